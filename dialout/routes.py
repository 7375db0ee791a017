"""Dial-out: the server places a phone call that connects the callee to the bot.

POST /dialout                place a call (bearer key) through Twilio (default) or Exotel;
                             the provider streams it to /ws once answered (see `placers`),
                             at most once per `Idempotency-Key` (see `idempotency`)
POST /status                 Twilio's status callbacks for the calls placed (signature-checked)
POST /exotel/status/{token}  Exotel's status callbacks (the path's secret token is checked)
GET  /calls/{call_sid}       the call's record, with its latest status (records/api.py)

Dial-out is off until `DIALOUT_API_KEY` is set: without it every request is refused.
Everything a request carries is checked before the provider is asked for anything.
A callback's URL names the dial-out attempt (`?attempt=`), so it finds the call's
record even when the provider's answer to placing it was lost.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from loguru import logger

from assistants.registry import ASSISTANT_PARAMETER
from deps import (
    KEY_REFUSED,
    ApiKeyDep,
    AssistantsDep,
    CallStatusDep,
    CapacityDep,
    OncePlacerDep,
    PlacersDep,
    SettingsDep,
    refusal,
)
from dialout.idempotency import OncePlacer, request_hash
from dialout.placers import EXOTEL_STATUS_PATH, exotel_status_token, placers_for
from dialout.placing import CallNotPlaced
from dialout.request import DialoutAnswer, DialoutRequest
from records.attempts import Attempt, is_attempt_id, new_attempt_id
from telephony.callbacks import (
    EXOTEL_STATUS_CALLBACK,
    EXOTEL_TOKEN,
    NO_CONTENT,
    STATUS_CALLBACK,
    TWILIO_SIGNED,
)
from telephony.twilio import unsigned_refusal
from urls import configured_base

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="The same key within 24 h answers as the first time and places nothing.",
    ),
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Give the app a placer per provider, and close their HTTP sessions on shutdown."""
    app.state.placers = placers_for(app.state.settings)
    app.state.once = OncePlacer(app.state.call_status.attempts, app.state.metrics)
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
        409: refusal("A request with this Idempotency-Key is being placed"),
        422: refusal("A bad request, a number the provider rejects, no caller id, or a reused key"),
        502: refusal("The provider refused the server's credentials, or the connection dropped"),
        503: refusal(
            "Draining, at capacity, the provider rate-limits or is unreachable, or the "
            "call records cannot be written"
        ),
        504: refusal("The provider did not answer in time: the call may exist (status_url)"),
    },
)
async def place_call(
    body: DialoutRequest,
    request: Request,
    _key: ApiKeyDep,
    _capacity: CapacityDep,
    settings: SettingsDep,
    placers: PlacersDep,
    assistants: AssistantsDep,
    once: OncePlacerDep,
    idempotency_key: IdempotencyKey = None,
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
    if not settings.dials_out:  # the key alone: an offline server's API and console
        return refused(
            503,
            "Dial-out needs a provider's credentials on the server: TWILIO_ACCOUNT_SID and "
            "TWILIO_AUTH_TOKEN, or EXOTEL_API_KEY, EXOTEL_API_TOKEN, EXOTEL_ACCOUNT_SID and "
            "EXOTEL_CALLER_ID",
        )
    base = configured_base(settings)
    if base is None:  # settings refuse this at start-up; never fall back on request headers
        return refused(503, "Dial-out needs PUBLIC_URL on the server")
    attempt_id = new_attempt_id()
    try:
        call = placer.prepare(body, base, attempt_id)
    except CallNotPlaced as e:
        return refused(e.status, e.detail, **e.fields)
    attempt = Attempt(
        attempt_id,
        provider=placer.name,
        to=body.to,
        from_number=call.from_number,
        parameters=body.parameters,
        idempotency_key=idempotency_key,
        request_hash=request_hash(body),
    )

    def status_url(sid: str) -> str:
        return str(request.url_for("call_status", call_sid=sid).path)

    with logger.contextualize(call_sid=attempt_id):
        logger.info(f"Dial-out to {_redacted(body.to)} via {placer.name}")
        return await once.place(placer.name, body, call, attempt, status_url)


def _int_or_none(value: object) -> int | None:
    """A count of seconds (or a sequence number), None when it is not one a column holds."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 0 <= number < 2**31 else None


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
            attempt_id=_attempt(request),
            # Signed by Twilio: a call of this account, even one placed before its record.
            create=settings.validates_signatures,
        )
        if entry is None:
            logger.warning(f"Status {status!r} for a call not on record: left alone")
        else:
            machine = f", answered by {answered_by}" if answered_by else ""
            logger.info(f"Call status: {status}{machine}")
    return Response(status_code=204)


# Exotel's StatusCallbackEvents: `answered` while the call is up, `terminal` with its end.
EXOTEL_ANSWERED = "answered"


ExotelToken = Annotated[
    str, Path(description="The secret the callback URL carries (derived from DIALOUT_API_KEY)")
]


@router.post(
    EXOTEL_STATUS_PATH + "/{token}",
    status_code=204,
    response_class=Response,
    responses={204: NO_CONTENT, **EXOTEL_TOKEN},
    openapi_extra=EXOTEL_STATUS_CALLBACK,
)
async def exotel_status_callback(
    request: Request, settings: SettingsDep, store: CallStatusDep, token: ExotelToken
) -> Response:
    """Exotel's report on a call it placed for us: keep its latest status.

    Exotel posts `CallSid`, `Status` (completed, failed, busy, no-answer),
    `EventType` (answered, terminal) and `ConversationDuration`, form-encoded or
    as JSON. It signs nothing: the URL's `token` is the credential. It rides in the
    path, which the access log does not show unredacted.
    """
    return await _exotel_status(request, settings, store, token)


@router.post(EXOTEL_STATUS_PATH, status_code=204, include_in_schema=False)
async def exotel_status_callback_with_query_token(
    request: Request, settings: SettingsDep, store: CallStatusDep
) -> Response:
    """The same, for calls placed before the token moved from `?token=` into the path."""
    return await _exotel_status(request, settings, store, request.query_params.get("token", ""))


async def _exotel_status(
    request: Request, settings: SettingsDep, store: CallStatusDep, token: str
) -> Response:
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
        entry = await store.record(
            call_sid,
            status,
            duration=duration,
            provider="exotel",
            attempt_id=_attempt(request),
            create=True,  # the token vouches for it: a call of this server's
        )
        if entry is None:
            logger.warning(f"Exotel status {status!r} for a call of another provider")
        else:
            logger.info(f"Call status: {status} (Exotel {event or 'callback'})")
    return Response(status_code=204)


def _attempt(request: Request) -> str | None:
    attempt_id = request.query_params.get("attempt", "")
    return attempt_id if is_attempt_id(attempt_id) else None


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
