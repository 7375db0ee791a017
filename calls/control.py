"""Controlling a live call over HTTP (bearer key): play a prompt, say a text.

    POST /calls/{call_sid}/play  {"prompt": "hold-music"}   a WAV from PROMPTS_DIR
    POST /calls/{call_sid}/say   {"text": "One moment please."}

Both answer 202 once the audio is queued behind what the bot is saying; the
caller may interrupt it as they may the bot. Any replica (or worker) may take
them: when another process holds the call, the request reaches it through
PostgreSQL (calls/actions.py, calls/relay.py), which acts and answers.

    404  no such call on record
    409  the call has ended, or the process holding it cannot be reached (SQLite with
         several processes, or that process has gone)
    422  a prompt name with a path in it, or no such prompt (or a bad body)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from calls.actions import Play, PlayRequest, Queued, Say, SayRequest, run
from deps import (
    KEY_REFUSED,
    AdmissionDep,
    RecordsDep,
    RelayDep,
    SettingsDep,
    refusal,
    require_api_key,
)

router = APIRouter(prefix="/calls", tags=["calls"], dependencies=[Depends(require_api_key)])

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
