"""Dial-out: the server places a phone call that connects the callee to the bot.

POST /dialout           place a call (bearer key) through Twilio (default) or Exotel;
                        the provider streams it to /ws once answered (see `placers`)
POST /status            Twilio's status callbacks for the calls placed (signature-checked)
POST /exotel/status     Exotel's status callbacks (the URL's secret token is checked)
GET  /calls/{call_sid}  the call's record, with its latest status (records/api.py)

Dial-out is off until `DIALOUT_API_KEY` is set: without it every request is refused.
Everything a request carries is checked before the provider is asked for anything.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from loguru import logger

from assistants.registry import ASSISTANT_PARAMETER
from deps import (
    KEY_REFUSED,
    ApiKeyDep,
    AssistantsDep,
    CallStatusDep,
    CapacityDep,
    MetricsDep,
    PlacersDep,
    SettingsDep,
    refusal,
)
from dialout.placers import EXOTEL_STATUS_PATH, exotel_status_token, placers_for
from dialout.placing import CallNotPlaced
from dialout.request import DialoutAnswer, DialoutRequest
from telephony.callbacks import (
    EXOTEL_STATUS_CALLBACK,
    EXOTEL_TOKEN,
    NO_CONTENT,
    STATUS_CALLBACK,
    TWILIO_SIGNED,
)
from telephony.twilio import unsigned_refusal
from urls import public_base


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Give the app a placer per provider, and close their HTTP sessions on shutdown."""
    app.state.placers = placers_for(app.state.settings)
    try:
        yield
    finally:
        for placer in app.state.placers.values():
            await placer.aclose()


router = APIRouter(lifespan=lifespan)


def refused(status: int, detail: str, **extra: object) -> JSONResponse:
    """An error answer in FastAPI's `{"detail": …}` shape, with extra fields."""
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def _redacted(number: str) -> str:
    return number[:-4] + "····" if len(number) > 8 else "····"


@router.post(
    "/dialout",
    status_code=201,
    response_model=DialoutAnswer,
    responses={
        **KEY_REFUSED,
        403: refusal("Outside DIALOUT_ALLOWED_PREFIXES, or the provider's geo permissions"),
        400: refusal("A body that is not JSON"),
        422: refusal("A bad request, a number the provider rejects, or no caller id"),
        502: refusal("The provider refused the server's credentials"),
        503: refusal("Draining, at capacity, or the provider rate-limits or is unreachable"),
        504: refusal("The provider did not answer in time: the call may exist"),
    },
)
async def place_call(
    body: DialoutRequest,
    request: Request,
    _key: ApiKeyDep,
    _capacity: CapacityDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    store: CallStatusDep,
    placers: PlacersDep,
    assistants: AssistantsDep,
) -> Response:
    """Call `to`; when the callee answers, the call streams to this server's bot."""
    placer = placers.get(body.provider)
    if placer is None:
        return refused(422, f"Unknown provider {body.provider[:40]!r}: one of {', '.join(placers)}")
    wanted = body.assistant
    if wanted is None and assistants.path is not None:  # without a file it is plain call data
        wanted = body.parameters.get(ASSISTANT_PARAMETER)
    if wanted is not None:
        if assistants.named(wanted) is None:
            names = ", ".join(a.name for a in assistants.all())
            return refused(422, f"No assistant named {wanted[:64]!r}: one of {names}")
        # It rides to the stream as a <Parameter>, like the caller's own data.
        parameters = {**body.parameters, ASSISTANT_PARAMETER: wanted}
        body = body.model_copy(update={"parameters": parameters})
    prefixes = settings.dialout_allowed_prefixes
    if prefixes and not body.to.startswith(tuple(prefixes)):
        logger.warning(f"Dial-out refused: {_redacted(body.to)} is outside the allowed prefixes")
        return refused(403, "This destination is not in DIALOUT_ALLOWED_PREFIXES")
    base = public_base(request, settings)
    try:
        call = await placer.place(body, base)
    except CallNotPlaced as e:
        metrics.dialout_failed(placer.name, e.twilio_code or e.fields.get("exotel_status"))
        refusal = refused(e.status, e.detail, **e.fields)
        if e.retry_after is not None:
            refusal.headers["Retry-After"] = str(e.retry_after)
        return refusal
    metrics.dialout_placed(placer.name)
    await store.placed(
        call.call_sid,
        to=body.to,
        from_number=call.from_number,
        status=call.status,
        provider=placer.name,
        parameters=body.parameters,
    )
    with logger.contextualize(call_sid=call.call_sid):
        logger.info(f"Dial-out to {_redacted(body.to)} placed via {placer.name} ({call.status})")
    status_url = str(request.url_for("call_status", call_sid=call.call_sid).path)
    answer = DialoutAnswer(
        call_sid=call.call_sid,
        status=call.status,
        to=body.to,
        from_=call.from_number,
        status_url=status_url,
    )
    return JSONResponse(
        answer.model_dump(by_alias=True), status_code=201, headers={"Location": status_url}
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


@router.post(
    "/status",
    status_code=204,
    response_class=Response,
    responses={204: NO_CONTENT, **TWILIO_SIGNED},
    openapi_extra=STATUS_CALLBACK,
)
async def status_callback(
    request: Request, settings: SettingsDep, store: CallStatusDep
) -> Response:
    """Twilio's progress report on a placed call: keep its latest status."""
    if (refusal := await unsigned_refusal(request, settings, "Status callback")) is not None:
        return refusal
    form = await request.form()
    call_sid, status = str(form.get("CallSid", "")), str(form.get("CallStatus", ""))
    if not call_sid or not status:
        return Response("CallSid and CallStatus are required", 400, media_type="text/plain")
    answered_by = str(form.get("AnsweredBy", "")) or None
    with logger.contextualize(call_sid=call_sid):
        entry = await store.record(
            call_sid,
            status,
            answered_by=answered_by,
            duration=_int_or_none(form.get("CallDuration")),
            sequence=_int_or_none(form.get("SequenceNumber")),
            provider="twilio",
        )
        if entry is None:
            logger.warning(f"Status {status!r} for a call this server did not place")
        else:
            machine = f", answered by {answered_by}" if answered_by else ""
            logger.info(f"Call status: {status}{machine}")
    return Response(status_code=204)


# Exotel's StatusCallbackEvents: `answered` while the call is up, `terminal` with its end.
EXOTEL_ANSWERED = "answered"


@router.post(
    EXOTEL_STATUS_PATH,
    status_code=204,
    response_class=Response,
    responses={204: NO_CONTENT, **EXOTEL_TOKEN},
    openapi_extra=EXOTEL_STATUS_CALLBACK,
)
async def exotel_status_callback(
    request: Request, settings: SettingsDep, store: CallStatusDep
) -> Response:
    """Exotel's report on a call it placed for us: keep its latest status.

    Exotel posts `CallSid`, `Status` (completed, failed, busy, no-answer),
    `EventType` (answered, terminal) and `ConversationDuration`, form-encoded or
    as JSON. It signs nothing: the URL's `token` is the credential.
    """
    token = request.query_params.get("token", "")
    if settings.dialout_api_key is None or not secrets.compare_digest(
        token.encode(), exotel_status_token(settings).encode()
    ):
        logger.warning("Exotel status callback refused: missing or wrong token")
        return Response("invalid token", status_code=403, media_type="text/plain")
    fields = await _exotel_fields(request)
    if fields is None:
        return Response(
            "a form, or a JSON object whose CallSid, Status and EventType are strings "
            "(and ConversationDuration a number)",
            400,
            media_type="text/plain",
        )
    call_sid = str(fields.get("CallSid") or "")
    event = str(fields.get("EventType") or "").lower()
    status = "in-progress" if event == EXOTEL_ANSWERED else str(fields.get("Status") or "")
    if not call_sid or not status:
        return Response("CallSid and Status are required", 400, media_type="text/plain")
    with logger.contextualize(call_sid=call_sid):
        duration = _int_or_none(fields.get("ConversationDuration"))
        if await store.record(call_sid, status, duration=duration, provider="exotel") is None:
            logger.warning(f"Exotel status {status!r} for a call this server did not place")
        else:
            logger.info(f"Call status: {status} (Exotel {event or 'callback'})")
    return Response(status_code=204)


async def _exotel_fields(request: Request) -> dict[str, object] | None:
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        # A status or id that is not text would be stored as its Python repr.
        texts = ("CallSid", "Status", "EventType")
        if any(not isinstance(body.get(name, ""), str) for name in texts):
            return None
        duration = body.get("ConversationDuration", "")
        if isinstance(duration, bool) or not isinstance(duration, str | int):
            return None
        return body
    return dict(await request.form())
