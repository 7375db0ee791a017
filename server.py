"""Switchboard's HTTP and websocket server: `create_app(settings)` and `main()`.

POST /         Twilio's voice webhook (calls/webhook.py)
WS   /ws       a call's media stream, Twilio or Exotel (calls/stream.py)
POST /dialout, /status, /exotel/status   dial-out (dialout/routes.py)
GET  /calls, /calls/{call_sid}   call records and transcripts (records/api.py)
GET  /healthz, /readyz, /metrics   operations (ops/routes.py)
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from loguru import logger
from pydantic import ValidationError

from calls import stream, webhook
from dialout import routes as dialout
from dialout.status import CallStatusStore
from ops import drain, health
from ops import routes as ops
from ops.admission import Admission
from ops.logs import configure_logging
from ops.metrics import Metrics
from records.api import router as records_router
from records.recorder import Recorder
from records.store import CallStore
from settings import Settings
from voice import VoiceStack


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
    app.state.admission = Admission(settings.call_capacity)
    app.state.metrics = Metrics(live_calls=lambda: app.state.admission.running)
    app.state.records = Recorder(
        CallStore(settings.database_url.get_secret_value()),
        transcripts=settings.store_transcripts,
        failed=app.state.metrics.record_write_failed,
    )
    app.state.call_status = CallStatusStore(app.state.records.store)
    health.install(app)
    health.add_readiness_check(app, "database", lambda app: app.state.records.problem())
    for router in (webhook.router, stream.router, dialout.router, records_router, ops.router):
        app.include_router(router)
    return app


def warn_about_open_doors(settings: Settings) -> None:
    """Say at start-up what the configuration leaves unauthenticated."""
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


def main() -> None:
    """Serve with the settings from the environment and `.env`."""
    try:
        settings = Settings()
    except ValidationError as e:
        raise SystemExit(f"Invalid configuration:\n{e}") from None
    configure_logging(settings)
    warn_about_open_doors(settings)
    drain.run(create_app(settings), settings)


if __name__ == "__main__":
    main()
