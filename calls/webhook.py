"""POST /: Twilio's voice webhook, answered with TwiML that streams the call to /ws.

Anything in the webhook URL's query string becomes a `<Parameter>` of the
stream (per-number personas without code); the server adds `from_number`,
`to_number` and `direction` itself, and, with an assistants file, the
`assistant` that answers the number called (unless the query names one).
Twilio never gets a 5xx: at capacity the call is rejected busy, and a bad
signature gets 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from loguru import logger

import twiml
from assistants.registry import ASSISTANT_PARAMETER
from deps import AdmissionDep, AssistantsDep, MetricsDep, RecordsDep, SettingsDep
from ops.admission import RETRY_AFTER_SECS, proxy_retries
from ops.metrics import WebhookOutcome
from telephony.call_info import RESERVED_PARAMETERS
from telephony.callbacks import TWILIO_SIGNED, VOICE_WEBHOOK
from telephony.twilio import unsigned_refusal
from urls import public_base

TWIML = "application/xml"
TWIML_ANSWER = {
    "description": "TwiML: connect the call's media stream, or reject it busy",
    "content": {TWIML: {"schema": {"type": "string"}}},
}

router = APIRouter()


@router.post(
    "/",
    response_class=Response,
    responses={200: TWIML_ANSWER, **TWILIO_SIGNED},
    openapi_extra=VOICE_WEBHOOK,
)
async def voice_webhook(
    request: Request,
    settings: SettingsDep,
    admission: AdmissionDep,
    metrics: MetricsDep,
    records: RecordsDep,
    assistants: AssistantsDep,
) -> Response:
    """Answer an incoming call: stream it to the bot, or reject it busy."""
    if (forbidden := await unsigned_refusal(request, settings, "Webhook")) is not None:
        metrics.webhook(WebhookOutcome.INVALID_SIGNATURE)
        return forbidden
    form = await request.form()
    call_sid = str(form.get("CallSid", ""))
    with logger.contextualize(call_sid=call_sid or "-"):
        custom = {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMETERS}
        caller, called = str(form.get("From", "")), str(form.get("To", ""))
        if (refusal := admission.machine_refusal) is not None:
            if proxy_retries(request):
                logger.info(f"Incoming call passed back to the proxy (503): {refusal}")
                return Response(
                    f"busy: {refusal}",
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_SECS)},
                    media_type="text/plain",
                )
            logger.warning(f"Incoming call rejected busy: {refusal}")
            metrics.webhook(WebhookOutcome.REJECTED)
            if call_sid:
                records.rejected(call_sid, from_number=caller, to_number=called, parameters=custom)
            return Response(twiml.reject_busy(), media_type=TWIML)
        if assistants.path is not None and ASSISTANT_PARAMETER not in custom:
            custom[ASSISTANT_PARAMETER] = assistants.for_number(called).assistant.name
        parameters = custom | {
            "from_number": caller,
            "to_number": called,
            "direction": "inbound",
        }
        logger.info("Incoming call: streaming it to /ws")
        metrics.webhook(WebhookOutcome.CONNECTED)
        if call_sid:
            records.incoming(call_sid, from_number=caller, to_number=called, parameters=custom)
        base = public_base(request, settings)
        body = twiml.stream_to_bot(base, parameters, settings, call_sid=call_sid)
    return Response(body, media_type=TWIML)
