"""What Twilio asks during a transfer: how the dial ended, and what the agent hears first.

    POST /transfer/dial-result   `<Dial action>`: answered → `<Hangup/>`; no-answer, busy,
                                 failed or canceled → back to the bot, a new stream
    POST /transfer/whisper       `<Number url>` (POST): `<Say>` the call's summary to the agent

Both are Twilio's: signed with `X-Twilio-Signature` (403 without), the whisper
also with this server's own expiring signature (403 when forged or expired).
Twilio never gets a 5xx: a database that fails still brings the caller back.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from loguru import logger
from twilio.twiml.voice_response import VoiceResponse

import twiml
from deps import RecordsDep, SettingsDep
from records.models import Call
from telephony.callbacks import BAD_FORM, DIAL_RESULT, TWILIO_SIGNED, WHISPER
from telephony.twilio import unsigned_refusal
from transfer.links import DIAL_RESULT_PATH, WHISPER_PATH, whisper_problem
from transfer.twilio import hangup_twiml
from urls import public_base

TWIML = "application/xml"
TWIML_ANSWER = {"description": "TwiML", "content": {TWIML: {"schema": {"type": "string"}}}}
WHISPER_REFUSED = {
    "description": "Missing or wrong X-Twilio-Signature, or a whisper URL forged or expired",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
CONNECTED = frozenset({"completed", "answered"})
NOT_CONNECTED = frozenset({"no-answer", "busy", "failed", "canceled"})
NO_SUMMARY = "A call transferred from the assistant."

router = APIRouter(tags=["twilio"])


def _text(body: str, status: int) -> Response:
    return Response(body, status_code=status, media_type="text/plain")


@router.post(
    DIAL_RESULT_PATH,
    response_class=Response,
    responses={200: TWIML_ANSWER, **TWILIO_SIGNED, 400: BAD_FORM},
    openapi_extra=DIAL_RESULT,
)
async def dial_result(request: Request, settings: SettingsDep, records: RecordsDep) -> Response:
    """The transfer's dial ended: hang up after a connected call, else the caller is back."""
    if (refusal := await unsigned_refusal(request, settings, "Dial result")) is not None:
        return refusal
    form = await request.form()
    call_sid, status = str(form.get("CallSid", "")), str(form.get("DialCallStatus", ""))
    if not CALL_SID.fullmatch(call_sid) or status not in CONNECTED | NOT_CONNECTED:
        return _text("CallSid and a DialCallStatus are required", 400)
    target = request.query_params.get("target", "")[:64]
    leg = request.query_params.get("leg", "")
    with logger.contextualize(call_sid=call_sid):
        record: Call | None = None
        try:
            record = await records.store.transfer_ended(call_sid, status)
        except Exception as e:  # the caller is brought back all the same
            logger.error(f"Dial result not recorded: {type(e).__name__}")
        if status in CONNECTED:
            logger.info(f"Transfer to {target}: {status}; the call is over")
            return Response(hangup_twiml(), media_type=TWIML)
        logger.info(f"Transfer to {target}: {status}; the caller is back with the bot")
        parameters = _stream_parameters(record, form) | {
            "leg": leg if leg.isdigit() and 1 < int(leg) < 100 else "2",
            "transfer_target": target,
            "transfer_result": status,
        }
        base = public_base(request, settings)
        body = twiml.stream_to_bot(base, parameters, settings, call_sid=call_sid)
    return Response(body, media_type=TWIML)


def _stream_parameters(record: Call | None, form: Any) -> dict[str, str]:
    """The call's stream parameters again: from its record, else from Twilio's form."""
    if record is not None:
        custom = {str(k): str(v) for k, v in (record.parameters or {}).items()}
        return custom | {
            "from_number": record.from_number or "",
            "to_number": record.to_number or "",
            "direction": record.direction or "inbound",
        }
    direction = str(form.get("Direction", "inbound"))
    return {
        "from_number": str(form.get("From", "")),
        "to_number": str(form.get("To", "")),
        "direction": "outbound" if direction.startswith("outbound") else "inbound",
    }


@router.post(
    WHISPER_PATH,
    response_class=Response,
    responses={200: TWIML_ANSWER, **TWILIO_SIGNED, 403: WHISPER_REFUSED},
    openapi_extra=WHISPER,
)
async def whisper(request: Request, settings: SettingsDep, records: RecordsDep) -> Response:
    """What the agent hears on answering, before the caller is connected."""
    if (refusal := await unsigned_refusal(request, settings, "Whisper")) is not None:
        return refusal
    query = request.query_params
    call_sid = query.get("call", "")
    problem = whisper_problem(settings, call_sid, query.get("expires", ""), query.get("sig", ""))
    if problem is not None:
        logger.warning(f"Whisper refused: {problem}")
        return _text(f"whisper URL refused: {problem}", 403)
    summary = NO_SUMMARY
    with logger.contextualize(call_sid=call_sid):
        try:
            record = await records.store.get_call(call_sid)
        except Exception as e:  # the agent still hears something, and is connected
            logger.error(f"Whisper: the record could not be read: {type(e).__name__}")
            record = None
        if record is not None and record.transfer_summary:
            summary = record.transfer_summary
    response = VoiceResponse()
    response.say(summary)
    return Response(str(response), media_type=TWIML)
