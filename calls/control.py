"""Controlling a live call over HTTP (bearer key): play, say, transfer, hang up.

    POST /calls/{call_sid}/play      {"prompt": "hold-music"}   a WAV from PROMPTS_DIR
    POST /calls/{call_sid}/say       {"text": "One moment please."}
    POST /calls/{call_sid}/transfer  {"target": "sales"}        a TRANSFER_TARGETS name
    POST /calls/{call_sid}/hangup

Play and say answer 202 once the audio is queued behind what the bot is saying;
the caller may interrupt it as they may the bot. Any replica (or worker) may take
them: when another process holds the call, the request reaches it through
PostgreSQL (calls/actions.py, calls/relay.py), which acts and answers. Transfer
and hang-up work from any replica for Twilio calls (by call SID, through the REST
API; transfer.remote); the process holding the call says the handoff line first.

    404  no such call on record
    409  the call has ended, or the process holding it cannot be reached (SQLite with
         several processes, or that process has gone); Twilio says it is not in progress
    422  a prompt name with a path in it, or no such prompt; a target not configured
    502  Twilio refused the transfer or the hang-up, or was not reached (the reason said)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from bot import CallEnded
from calls.actions import Play, PlayRequest, Queued, Say, SayRequest, live_record, run
from deps import (
    KEY_REFUSED,
    AdmissionDep,
    RecordsDep,
    RelayDep,
    SettingsDep,
    refusal,
    require_api_key,
)
from transfer.errors import TransferError
from transfer.remote import hang_up_elsewhere, transfer_elsewhere

router = APIRouter(prefix="/calls", tags=["calls"], dependencies=[Depends(require_api_key)])


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


# What a request about a live call answers instead, for the OpenAPI description.
LIVE_CALL_REFUSED: dict[int | str, dict[str, Any]] = {
    **KEY_REFUSED,
    400: refusal("A body that is not JSON"),
    404: refusal("No such call on record"),
    409: refusal("The call has ended, or the process that holds it cannot be reached"),
}


@router.post("/{call_sid}/play", status_code=202, responses=LIVE_CALL_REFUSED)
async def play(
    call_sid: str,
    body: PlayRequest,
    admission: AdmissionDep,
    records: RecordsDep,
    relay: RelayDep,
    settings: SettingsDep,
) -> Queued:
    """Play a prompt from PROMPTS_DIR in the call, after what the bot is saying."""
    action = Play(prompt=body.prompt)
    return await run(call_sid, action, admission, records, relay, settings)


@router.post("/{call_sid}/say", status_code=202, responses=LIVE_CALL_REFUSED)
async def say(
    call_sid: str,
    body: SayRequest,
    admission: AdmissionDep,
    records: RecordsDep,
    relay: RelayDep,
    settings: SettingsDep,
) -> Queued:
    """Say a text in the call with the bot's voice, after what it is saying."""
    action = Say(text=body.text)
    return await run(call_sid, action, admission, records, relay, settings)


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
