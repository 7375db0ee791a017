"""In-call actions (play, say), on the call's bot here or through the process that holds it.

    queued = await run(call_sid, Play(prompt="hold-music"), admission, records, relay, settings)

`run` acts at once when this process holds the call; else it checks the record
(404 none, 409 ended) and asks the holder through the relay (calls/relay.py),
whose answer is `holder`'s. Each refusal is an `HTTPException` with its reason.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from bot import Bot, CallEnded
from calls.relay import CallRelay, Holder, RelayError
from ops.admission import Admission
from records.models import Call
from records.recorder import Recorder
from settings import Settings
from voice.prompts import PromptError, load_prompt

MAX_SAY_CHARS = 2000
QUEUED = 202


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


class Play(PlayRequest):
    """Play a prompt: the request, as it travels to the process holding the call."""

    action: Literal["play"] = "play"


class Say(SayRequest):
    """Say a text: the request, as it travels to the process holding the call."""

    action: Literal["say"] = "say"


ACTION: TypeAdapter[Play | Say] = TypeAdapter(Annotated[Play | Say, Field(discriminator="action")])


async def act(bot: Bot, action: Play | Say, settings: Settings) -> tuple[int, str]:
    """Queue `action` in `bot`'s call: 202, or the status and reason it was refused."""
    try:
        if isinstance(action, Play):
            audio = await asyncio.to_thread(
                load_prompt, settings.prompts_dir, action.prompt, bot.call.sample_rate
            )
            await bot.play(audio)
        else:
            await bot.say(action.text)
    except PromptError as e:
        return 422, str(e)
    except CallEnded as e:
        return 409, str(e)
    return QUEUED, "queued"


def holder(admission: Admission, settings: Settings) -> Holder:
    """How this process answers a relayed request: for the calls it holds, and only those."""

    async def answer(call_sid: str, request: dict[str, Any]) -> tuple[int, str] | None:
        bot = admission.bot(call_sid)
        if bot is None:
            return None
        try:
            action = ACTION.validate_python(request)
        except ValidationError as e:
            return 422, f"not a call-control request ({e.error_count()} errors)"
        return await act(bot, action, settings)

    return answer


async def live_record(call_sid: str, records: Recorder) -> Call:
    """The record of a call not yet ended.

    Raises:
        HTTPException: 404 for a call not on record, 409 for one that has ended.
    """
    call = await records.store.get_call(call_sid)
    if call is None:
        raise HTTPException(404, f"No call {call_sid} is on record")
    if call.ended_at is not None or call.end_reason is not None:
        raise HTTPException(409, f"Call {call_sid} has ended")
    return call


async def run(
    call_sid: str,
    action: Play | Say,
    admission: Admission,
    records: Recorder,
    relay: CallRelay | None,
    settings: Settings,
) -> Queued:
    """Act on the call here when this process holds it, else through the one that does.

    Raises:
        HTTPException: 404 no such call; 409 ended or its holder out of reach; 422 a bad prompt.
    """
    bot = admission.bot(call_sid)
    if bot is not None:
        status, detail = await act(bot, action, settings)
    else:
        await live_record(call_sid, records)
        elsewhere = f"Call {call_sid} is not running in this process"
        if relay is None:
            raise HTTPException(
                409,
                f"{elsewhere}, and other processes cannot be reached without PostgreSQL "
                "(DATABASE_URL): send the request to the one that runs it",
            )
        try:
            status, detail = await relay.ask(call_sid, action.model_dump())
        except RelayError as e:
            raise HTTPException(409, f"{elsewhere}, and {e}") from None
    if status != QUEUED:
        raise HTTPException(status, detail)
    return Queued(call_sid=call_sid)
