"""Switchboard's HTTP and websocket server: `create_app(settings)` and `main()`.

POST /         Twilio's voice webhook (calls/webhook.py)
WS   /ws       a call's media stream, Twilio or Exotel (calls/stream.py)
POST /dialout, /status, /exotel/status   dial-out (dialout/routes.py)
GET  /calls, /calls/{call_sid}   call records and transcripts (records/api.py)
GET  /assistants   the assistants in force (assistants/routes.py)
POST /calls/{call_sid}/play, /calls/{call_sid}/say   a live call (calls/control.py)
GET  /calls/{call_sid}/recording, POST /recording-status   recordings (recording/)
GET  /healthz, /readyz, /metrics   operations (ops/routes.py)
GET  /console…   the web console, when DIALOUT_API_KEY is set (console/)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from loguru import logger
from pydantic import ValidationError

from assistants import routes as assistants_routes
from assistants.loading import AssistantsFileError
from assistants.registry import Assistants
from calls import control, stream, webhook
from calls.actions import holder
from calls.relay import CallRelay
from console import site as console
from dialout import routes as dialout
from dialout.status import CallStatusStore
from events.builders import EventBuilder
from events.sender import EventMetrics, EventSender
from latency.traces import Traces
from ops import drain, health, workers
from ops import routes as ops
from ops.admission import Admission
from ops.handshakes import Handshakes
from ops.logs import configure_logging
from ops.machine import Machine
from ops.metrics import Metrics
from recording import retention
from recording import routes as recording_routes
from recording.recorder import Recordings
from records.api import router as records_router
from records.outbox import Outbox
from records.recorder import Recorder
from records.store import CallStore
from settings import Settings
from telephony.stream_token import stream_secret
from tools.http import ToolClient
from tools.metrics import ToolMetrics
from transfer import routes as transfer_routes
from voice import VoiceStack


def create_app(settings: Settings, voice: VoiceStack | None = None) -> FastAPI:
    """Build the server for `settings`.

    Args:
        settings: Validated settings.
        voice: An already loaded voice stack to share (tests); loaded at start-up when None.

    Raises:
        AssistantsFileError: `ASSISTANTS_FILE` is missing or wrong.
    """
    # One of several worker processes on this machine (ops/workers.py), or None.
    machine = Machine.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.records.open()
        if app.state.relay is not None:  # play and say for calls other processes hold
            await app.state.relay.start()
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
        if machine is not None:  # the supervisor learns that this worker is up
            machine.publish(app.state.admission)
        sender.start()
        reloads = _reload_on_sighup(app.state.assistants)
        tidy = asyncio.create_task(
            retention.keep_tidy(
                app.state.recordings.store,
                app.state.records.store,
                settings.recording_retention_days,
            )
        )
        yield
        tidy.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tidy
        await app.state.recordings.close()
        if reloads:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await sender.stop()
        await app.state.tool_client.aclose()
        if app.state.relay is not None:
            await app.state.relay.close()
        await app.state.records.close()
        await app.state.traces.close()

    app = FastAPI(title="Switchboard", lifespan=lifespan)
    app.state.settings = settings
    app.state.admission = Admission(settings.call_capacity)
    app.state.handshakes = Handshakes(settings.max_handshaking)
    app.state.metrics = Metrics(
        live_calls=lambda: app.state.admission.running, capacity=settings.call_capacity
    )
    app.state.traces = Traces(settings)
    app.state.records = Recorder(
        CallStore(settings.database_url.get_secret_value()),
        transcripts=settings.store_transcripts,
        failed=app.state.metrics.record_write_failed,
    )
    app.state.call_status = CallStatusStore(app.state.records.store)
    app.state.attempts = app.state.call_status.attempts
    app.state.recordings = Recordings(settings, app.state.records.store)
    app.state.admission.on_change(app.state.metrics.calls_changed)
    if machine is not None:
        app.state.admission.machine = machine
        app.state.admission.on_change(machine.publish)
    app.state.assistants = Assistants(settings)
    registry = app.state.metrics.registry
    app.state.tool_client = ToolClient(settings, ToolMetrics(registry))
    store = app.state.records.store
    app.state.relay = CallRelay.for_engine(store.engine, holder(app.state.admission, settings))
    sender = EventSender(Outbox(store.engine), settings, EventMetrics(registry))
    events_url = str(settings.events_url) if settings.events_url else None
    store.events = EventBuilder(app.state.assistants, events_url, sender.wake)
    health.install(app)
    health.add_readiness_check(app, "database", lambda app: app.state.records.problem())
    routers = (webhook.router, stream.router, dialout.router, records_router, ops.router)
    for router in (
        *routers,
        assistants_routes.router,
        control.router,
        recording_routes.router,
        recording_routes.callbacks,
        transfer_routes.router,
    ):
        app.include_router(router)
    console.install(app, settings)
    return app


def _reload_on_sighup(assistants: Assistants) -> bool:
    """Reload the assistants file on SIGHUP (only where signals can be handled: the main thread)."""
    if assistants.path is None:
        return False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, assistants.reload)
        return True
    return False


def warn_about_open_doors(settings: Settings) -> None:
    """Say at start-up what the configuration leaves unauthenticated."""
    if not settings.validates_signatures:
        logger.warning(
            "Twilio signatures are NOT checked (no TWILIO_AUTH_TOKEN, or "
            "TWILIO_VALIDATE_SIGNATURES=false): anyone who finds this server can use it"
        )
    if stream_secret(settings) is None:
        logger.warning(
            "Media streams carry no per-call token (no STREAM_SECRET, and Twilio signatures "
            "are not checked): a stream's start message is not authenticated"
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


def main() -> None:
    """Serve with the settings from the environment and `.env`."""
    try:
        settings = Settings()
    except ValidationError as e:
        raise SystemExit(f"Invalid configuration:\n{e}") from None
    configure_logging(settings)
    if Machine.from_environment() is None:  # the supervisor's, or the only process
        warn_about_open_doors(settings)
        if settings.worker_count > 1:
            try:
                Assistants(settings)  # a bad file stops the machine here, saying which line
            except AssistantsFileError as e:
                raise SystemExit(f"Invalid assistants file: {e}") from None
            workers.supervise(
                [sys.executable, str(Path(__file__).resolve())],
                settings.worker_count,
                settings.host,
                settings.port,
            )
    try:
        app = create_app(settings)
    except AssistantsFileError as e:
        raise SystemExit(f"Invalid assistants file: {e}") from None
    drain.run(app, settings)


if __name__ == "__main__":
    main()
