"""Controlling a live call over HTTP (bearer key): play, say, transfer, hang up.

    POST /calls/{call_sid}/play      {"prompt": "hold-music"}   a WAV from PROMPTS_DIR
    POST /calls/{call_sid}/say       {"text": "One moment please."}
    POST /calls/{call_sid}/transfer  {"target": "sales"}         a name in TRANSFER_TARGETS
    POST /calls/{call_sid}/hangup

Play and say answer 202 once the audio is queued behind what the bot is saying;
the caller may interrupt it as they may the bot. They need the call to run on
this replica (another replica's calls answer 409, saying so). Transfer and
hang-up work from any replica for Twilio calls (by call SID, through the REST
API; transfer.remote); the replica holding the call says the handoff line first.

    404  no such call on record          409  the call has ended, or runs elsewhere
    422  a prompt name with a path in it, or no such prompt; a target not configured
    502  Twilio refused the transfer or the hang-up, or was not reached (the reason said)
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from bot import Bot, CallEnded
from deps import KEY_REFUSED, AdmissionDep, RecordsDep, SettingsDep, refusal, require_api_key
from records.models import Call
from records.recorder import Recorder
from transfer.errors import TransferError
from transfer.remote import hang_up_elsewhere, transfer_elsewhere
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


class TransferRequest(BaseModel):
    """Where to transfer the call: a target's name (TRANSFER_TARGETS, or the call's own)."""

    target: Annotated[str, Field(min_length=1, max_length=64)]


class Transferred(BaseModel):
    """The call is being transferred."""

    call_sid: str
    target: str
    to: str
    status: str = Field(description="dialing (Twilio dials the target), or handed_off (Exotel)")


class Ended(BaseModel):
    """The call was hung up."""

    call_sid: str
    status: str = "ended"


async def live_record(call_sid: str, records: Recorder) -> Call:
    """The record of a call not yet ended (404 and 409 otherwise)."""
    call = await records.store.get_call(call_sid)
    if call is None:
        raise HTTPException(404, f"No call {call_sid} is on record")
    if call.ended_at is not None or call.end_reason is not None:
        raise HTTPException(409, f"Call {call_sid} has ended")
    return call


async def live_bot(call_sid: str, admission: AdmissionDep, records: RecordsDep) -> Bot:
    """The bot of a call live on this replica.

    Raises:
        HTTPException: 404 for a call not on record, 409 for one that ended or runs elsewhere.
    """
    bot = admission.bot(call_sid)
    if bot is not None:
        return bot
    await live_record(call_sid, records)
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


CONTROL_REFUSED: dict[int | str, dict[str, Any]] = {
    **KEY_REFUSED,
    400: refusal("A body that is not JSON"),
    404: refusal("No such call on record"),
    409: refusal(
        "The call has ended, Twilio says it is not in progress, or an Exotel call "
        "runs on another replica"
    ),
    422: refusal("A target that is not configured for the call (or a bad body)"),
    502: refusal("Twilio refused the request, or could not be reached"),
}


@router.post("/{call_sid}/transfer", responses=CONTROL_REFUSED)
async def transfer(
    call_sid: str,
    body: TransferRequest,
    admission: AdmissionDep,
    records: RecordsDep,
    settings: SettingsDep,
) -> Transferred:
    """Transfer the call to a configured target; the bot says the handoff line first."""
    bot = admission.bot(call_sid)
    try:
        if bot is not None and bot.handoff is not None:
            done = await bot.handoff.transfer(body.target)
        else:
            record = await live_record(call_sid, records)
            done = await transfer_elsewhere(settings, records.store, record, body.target)
    except TransferError as e:
        raise HTTPException(e.http_status, str(e)) from None
    return Transferred(
        call_sid=call_sid, target=done["target"], to=done["to"], status=done["status"]
    )


@router.post("/{call_sid}/hangup", responses=CONTROL_REFUSED)
async def hangup(
    call_sid: str, admission: AdmissionDep, records: RecordsDep, settings: SettingsDep
) -> Ended:
    """End the call: its stream closes here, or Twilio hangs it up by SID from any replica."""
    bot = admission.bot(call_sid)
    try:
        if bot is not None:
            await bot.end_by_api()
        else:
            record = await live_record(call_sid, records)
            await hang_up_elsewhere(settings, records.store, record)
    except CallEnded as e:
        raise HTTPException(409, str(e)) from None
    except TransferError as e:
        raise HTTPException(e.http_status, str(e)) from None
    return Ended(call_sid=call_sid)
