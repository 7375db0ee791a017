"""Switchboard's HTTP and websocket server: `create_app(settings)` and `main()`.

POST /     Twilio's voice webhook; answers TwiML that streams the call to /ws
POST /dialout, /status: dial-out (see `dialout`)
WS   /ws   the call's media stream (Twilio, or Exotel's Voicebot applet)
GET  /healthz, /readyz, /metrics   operations (health.py, metrics.py)
GET  /calls, /calls/{call_sid}: call records and transcripts (see `records.api`)
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response, WebSocket
from loguru import logger
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from pydantic import ValidationError
from starlette.datastructures import Headers

import dialout
import health
import serve
import twiml
from admission import Admission, AdmissionDep
from bot import Bot, EndReason
from call_status import CallStatusStore
from calls import CallRegistry
from fastpath import TelephonyTransport
from logs import configure_logging
from metrics import Metrics, MetricsDep, WebhookOutcome
from metrics import router as metrics_router
from records.api import router as records_router
from records.recorder import Recorder
from records.store import CallStore
from settings import Settings
from telephony import (
    CallEvents,
    TelephonyError,
    Unauthorized,
    identify,
    read_start,
    serializer_for,
    transport_options,
)
from telephony.access import admitted_providers, confirm
from telephony.twilio import signature_is_valid
from voice import VoiceStack

WS_POLICY_VIOLATION = 1008
WS_UNSUPPORTED_DATA = 1003
WS_INTERNAL_ERROR = 1011
WS_TRY_AGAIN_LATER = 1013
TWIML = "application/xml"


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_voice(request: Request) -> VoiceStack:
    return request.app.state.voice  # type: ignore[no-any-return]


def get_calls(request: Request) -> CallRegistry:
    return request.app.state.calls  # type: ignore[no-any-return]


def ws_settings(websocket: WebSocket) -> Settings:
    return websocket.app.state.settings  # type: ignore[no-any-return]


def ws_voice(websocket: WebSocket) -> VoiceStack:
    return websocket.app.state.voice  # type: ignore[no-any-return]


def ws_calls(websocket: WebSocket) -> CallRegistry:
    return websocket.app.state.calls  # type: ignore[no-any-return]


def get_records(request: Request) -> Recorder:
    return request.app.state.records  # type: ignore[no-any-return]


def ws_records(websocket: WebSocket) -> Recorder:
    return websocket.app.state.records  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
RecordsDep = Annotated[Recorder, Depends(get_records)]
WsSettingsDep = Annotated[Settings, Depends(ws_settings)]
WsVoiceDep = Annotated[VoiceStack, Depends(ws_voice)]
WsCallsDep = Annotated[CallRegistry, Depends(ws_calls)]
WsRecordsDep = Annotated[Recorder, Depends(ws_records)]


def public_base(headers: Headers, scheme: str, settings: Settings) -> str:
    """Where Twilio reaches this server: `PUBLIC_URL`, else the request's own host.

    Behind a proxy (ngrok, a load balancer) the scheme comes from `X-Forwarded-Proto`.
    """
    if settings.public_url is not None:
        return str(settings.public_url).rstrip("/")
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip()
    if not proto:
        proto = "https" if scheme in ("https", "wss") else "http"
    host = headers.get("x-forwarded-host") or headers.get("host", "localhost")
    return f"{proto}://{host}"


def create_app(settings: Settings, voice: VoiceStack | None = None) -> FastAPI:
    """Build the server for `settings`.

    Args:
        settings: Validated settings.
        voice: An already loaded voice stack to share (tests); loaded at start-up when None.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.records.open()
        if voice is None:
            app.state.voice = await VoiceStack.load(settings)
        elif isinstance(voice, VoiceStack):
            app.state.voice = voice.for_settings(settings)
        else:
            app.state.voice = voice
        # What start-up loaded lives as long as the process: keep the collector
        # from walking it, or each full collection stalls every call ~150 ms.
        gc.freeze()
        logger.info(f"Taking up to {settings.call_capacity} calls at once (MAX_CALLS)")
        yield
        await app.state.records.close()

    app = FastAPI(title="Switchboard", lifespan=lifespan)
    app.state.settings = settings
    app.state.calls = CallRegistry()
    app.state.records = Recorder(
        CallStore(settings.database_url.get_secret_value()),
        transcripts=settings.store_transcripts,
    )
    app.state.call_status = CallStatusStore(app.state.records.store)
    app.state.admission = Admission(settings.call_capacity)
    app.state.metrics = Metrics(live_calls=app.state.calls.__len__)
    health.install(app)
    app.include_router(metrics_router)
    app.include_router(dialout.router)
    app.include_router(records_router)

    @app.post("/")
    async def voice_webhook(
        request: Request,
        settings: SettingsDep,
        admission: AdmissionDep,
        metrics: MetricsDep,
        records: RecordsDep,
    ) -> Response:
        form = await request.form()
        base = public_base(request.headers, request.url.scheme, settings)
        if settings.validates_signatures:
            url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if not signature_is_valid(
                settings, url, form, request.headers.get("x-twilio-signature")
            ):
                logger.warning(f"Webhook refused: bad X-Twilio-Signature for {url}")
                metrics.webhook(WebhookOutcome.INVALID_SIGNATURE)
                return Response("invalid signature", status_code=403, media_type="text/plain")
        call_sid = str(form.get("CallSid", ""))
        with logger.contextualize(call_sid=call_sid or "-"):
            custom = {k: v for k, v in request.query_params.items() if k not in twiml.RESERVED}
            caller, called = str(form.get("From", "")), str(form.get("To", ""))
            if (refusal := admission.refusal) is not None:
                logger.warning(f"Incoming call rejected busy: {refusal}")
                metrics.webhook(WebhookOutcome.REJECTED)
                if call_sid:
                    records.rejected(
                        call_sid, from_number=caller, to_number=called, parameters=custom
                    )
                return Response(twiml.reject_busy(), media_type=TWIML)
            parameters = custom | {
                "from_number": caller,
                "to_number": called,
                "direction": "inbound",
            }
            logger.info("Incoming call: streaming it to /ws")
            metrics.webhook(WebhookOutcome.CONNECTED)
            if call_sid:
                records.incoming(call_sid, from_number=caller, to_number=called, parameters=custom)
            body = twiml.connect_stream(twiml.stream_url(base), parameters)
        return Response(body, media_type=TWIML)

    @app.websocket("/ws")
    async def media_stream(
        websocket: WebSocket,
        settings: WsSettingsDep,
        voice: WsVoiceDep,
        calls: WsCallsDep,
        admission: AdmissionDep,
        metrics: MetricsDep,
        records: WsRecordsDep,
    ) -> None:
        await websocket.accept()
        accepted_at = time.monotonic()
        url = twiml.stream_url(public_base(websocket.headers, websocket.url.scheme, settings))
        peer = websocket.client.host if websocket.client else None
        try:
            admitted = admitted_providers(websocket.headers, peer, url, settings)
            call = identify(await read_start(websocket))
            confirm(call, admitted)
        except Unauthorized as e:
            logger.warning(f"Media stream from {peer} refused: {e} (for {url})")
            metrics.signature_failed("media_stream")
            await websocket.close(WS_POLICY_VIOLATION, str(e))
            return
        except TelephonyError as e:
            logger.warning(f"Media stream refused: {e}")
            await websocket.close(WS_UNSUPPORTED_DATA, str(e))
            return
        with logger.contextualize(call_sid=call.call_sid), admission.admit() as has_slot:
            if not has_slot:
                # Twilio may open the stream on another replica than took the webhook.
                logger.warning(f"Media stream refused: {admission.refusal}")
                metrics.call_rejected(call.direction)
                records.rejected(
                    call.call_sid,
                    provider=call.provider,
                    direction=call.direction,
                    from_number=call.from_number,
                    to_number=call.to_number,
                    parameters=call.parameters,
                )
                await websocket.close(WS_TRY_AGAIN_LATER, f"busy: {admission.refusal}")
                return
            events = CallEvents()
            recording = records.recording(call)
            try:
                transport = TelephonyTransport(
                    websocket,
                    FastAPIWebsocketParams(
                        audio_in_enabled=True,
                        audio_out_enabled=True,
                        add_wav_header=False,
                        serializer=serializer_for(call, settings, events),
                        allowed_origins=[],  # Twilio's websocket has no Origin header
                        **transport_options(call),
                    ),
                    audio_in_frame_ms=settings.audio_in_frame_ms,
                )
                bot = Bot(call, transport, voice, settings, observers=recording.observers)
                metrics.watch(bot.worker, call.direction, accepted_at)
            except Exception:
                logger.exception("Could not set the call up")
                await recording.end(EndReason.ERROR)
                await websocket.close(WS_INTERNAL_ERROR, "the server could not set the call up")
                return
            events.on_stop(bot.caller_left)
            calls.add(bot)
            logger.info(
                f"Call started ({call.provider}, {call.direction}, "
                f"from {call.from_number} to {call.to_number})"
            )
            reason = EndReason.ERROR
            try:
                reason = await bot.run()
            finally:
                calls.remove(bot)
                await recording.end(reason)
            logger.info(f"Call ended: {reason}")
            metrics.call_ended(call.direction, reason, time.monotonic() - accepted_at)

    return app


def main() -> None:
    """Serve with the settings from the environment and `.env`."""
    try:
        settings = Settings()
    except ValidationError as e:
        raise SystemExit(f"Invalid configuration:\n{e}") from None
    configure_logging(settings)
    if not settings.validates_signatures:
        logger.warning(
            "Twilio signatures are NOT checked (no TWILIO_AUTH_TOKEN, or "
            "TWILIO_VALIDATE_SIGNATURES=false): anyone who finds this server can use it"
        )
    if not settings.exotel_authenticates:
        logger.warning(
            "Exotel streams are NOT authenticated (no EXOTEL_WS_USERNAME/EXOTEL_WS_PASSWORD "
            "nor EXOTEL_ALLOWED_IPS): "
            + (
                "they are refused while Twilio signatures are checked"
                if settings.validates_signatures
                else "anyone who finds /ws can open a call as Exotel"
            )
        )
    serve.run(create_app(settings), settings)


if __name__ == "__main__":
    main()
