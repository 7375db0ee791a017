"""Controlling a live call over HTTP (bearer key): play a prompt, say a text.

    POST /calls/{call_sid}/play  {"prompt": "hold-music"}   a WAV from PROMPTS_DIR
    POST /calls/{call_sid}/say   {"text": "One moment please."}

Both answer 202 once the audio is queued behind what the bot is saying; the
caller may interrupt it as they may the bot. The call must run on this
replica (another replica's calls answer 409, saying so):

    404  no such call on record          409  the call has ended, or runs elsewhere
    422  a prompt name with a path in it, or no such prompt (or a bad body)
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from bot import Bot, CallEnded
from deps import KEY_REFUSED, AdmissionDep, RecordsDep, SettingsDep, refusal, require_api_key
from voice.prompts import PromptError, load_prompt

MAX_SAY_CHARS = 2000

router = APIRouter(prefix="/calls", tags=["calls"], dependencies=[Depends(require_api_key)])


class PlayRequest(BaseModel):
    """What to play: a prompt's name (a WAV in PROMPTS_DIR, `.wav` optional)."""

    prompt: Annotated[str, Field(min_length=1, max_length=104)]


class SayRequest(BaseModel):
    """What to say, with the call's voice."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_SAY_CHARS)]


class Queued(BaseModel):
    """The audio is queued in the call."""

    call_sid: str
    status: str = "queued"


async def live_bot(call_sid: str, admission: AdmissionDep, records: RecordsDep) -> Bot:
    """The bot of a call live on this replica.

    Raises:
        HTTPException: 404 for a call not on record, 409 for one that ended or runs elsewhere.
    """
    bot = admission.bot(call_sid)
    if bot is not None:
        return bot
    call = await records.store.get_call(call_sid)
    if call is None:
        raise HTTPException(404, f"No call {call_sid} is on record")
    if call.ended_at is not None or call.end_reason is not None:
        raise HTTPException(409, f"Call {call_sid} has ended")
    raise HTTPException(
        409, f"Call {call_sid} is not running on this replica: ask the replica that runs it"
    )


LiveBot = Annotated[Bot, Depends(live_bot)]
# What a request about a live call answers instead, for the OpenAPI description.
LIVE_CALL_REFUSED: dict[int | str, dict[str, Any]] = {
    **KEY_REFUSED,
    400: refusal("A body that is not JSON"),
    404: refusal("No such call on record"),
    409: refusal("The call has ended, or runs on another replica"),
}


@router.post("/{call_sid}/play", status_code=202, responses=LIVE_CALL_REFUSED)
async def play(call_sid: str, body: PlayRequest, bot: LiveBot, settings: SettingsDep) -> Queued:
    """Play a prompt from PROMPTS_DIR in the call, after what the bot is saying."""
    try:
        audio = await asyncio.to_thread(
            load_prompt, settings.prompts_dir, body.prompt, bot.call.sample_rate
        )
    except PromptError as e:
        raise HTTPException(422, str(e)) from None
    try:
        await bot.play(audio)
    except CallEnded as e:
        raise HTTPException(409, str(e)) from None
    return Queued(call_sid=call_sid)


@router.post("/{call_sid}/say", status_code=202, responses=LIVE_CALL_REFUSED)
async def say(call_sid: str, body: SayRequest, bot: LiveBot) -> Queued:
    """Say a text in the call with the bot's voice, after what it is saying."""
    try:
        await bot.say(body.text)
    except CallEnded as e:
        raise HTTPException(409, str(e)) from None
    return Queued(call_sid=call_sid)
