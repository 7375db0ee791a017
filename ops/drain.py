"""Serving with uvicorn, where SIGTERM drains calls instead of dropping them.

Plain uvicorn answers SIGTERM by closing every open websocket with 1012 at
once, which hangs up every live call on each deploy. `DrainingServer` takes the
first SIGTERM (or SIGINT) as a request to drain:

    1. stop taking calls: `/readyz` turns 503, the webhook answers
       `<Reject reason="busy"/>`, `/ws` refuses new streams, `/dialout` 503;
    2. let live calls go on until they end, for up to `DRAIN_TIMEOUT` seconds;
    3. tell the calls still up that the service is restarting, let the goodbye
       play out, and end them;
    4. only then let uvicorn shut down; the process exits 0.

A second SIGTERM or SIGINT stops at once, the way plain uvicorn does.

A worker of several (ops/workers.py) also drains when its supervisor asks
(a file, see ops/machine.py) or is gone, and listens on the machine's shared port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI
from loguru import logger

from bot import EndReason
from ops.admission import Admission
from ops.logs import NO_CALL
from ops.machine import Machine, listening_socket
from settings import Settings

DRAIN_GOODBYE = "Sorry, this service is restarting. Please call again. Goodbye."
# How long the goodbye may take to play out and the calls to end.
GOODBYE_TIMEOUT_SECS = 30.0
# After the drain, how long uvicorn waits for connections before it cancels them.
SHUTDOWN_TIMEOUT_SECS = 10


class DrainingServer(uvicorn.Server):
    """A `uvicorn.Server` whose first exit signal drains the live calls before shutting down."""

    def __init__(
        self,
        config: uvicorn.Config,
        admission: Admission,
        drain_timeout: float,
        goodbye_timeout: float = GOODBYE_TIMEOUT_SECS,
        machine: Machine | None = None,
    ) -> None:
        """Serve `config`, draining the calls of `admission` on exit.

        Args:
            config: uvicorn's configuration.
            admission: The app's admission control, switched to draining; its
                live calls are told goodbye when the drain times out.
            drain_timeout: Seconds live calls may go on once the drain starts.
            goodbye_timeout: Seconds the goodbye may take before the calls are dropped.
            machine: As a worker of several, the machine whose supervisor may ask for a drain.
        """
        super().__init__(config)
        self.machine = machine
        self.supervisor_pid = os.getppid()
        self.admission = admission
        self.drain_timeout = drain_timeout
        self.goodbye_timeout = goodbye_timeout
        self.drain_requested = False
        self._drain_task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: start draining. Second: uvicorn's immediate shutdown."""
        if self.drain_requested:
            # bind: the handler runs in whatever context it interrupted, maybe a call's.
            logger.bind(call_sid=NO_CALL).warning(
                f"{signal.Signals(sig).name} again: stopping now, dropping live calls"
            )
            # Recorded, so uvicorn re-raises it once shut down: the exit status says "killed".
            self._captured_signals.append(sig)
            self.should_exit = self.force_exit = True
            return
        # Only flags here: this runs as a signal handler, between two bytecodes of anything
        # (the admission's listeners hear of the drain from `drain`, on the event loop).
        self.drain_requested = True
        self.admission.draining = True

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's 100 ms tick; it starts the drain a signal (or the supervisor) asked for."""
        if self.machine is not None and not self.drain_requested:
            if self.machine.drain_requested():
                self.drain_requested = True
            elif os.getppid() != self.supervisor_pid:
                logger.warning("The supervisor is gone: draining")
                self.drain_requested = True
        if self.drain_requested and self._drain_task is None:
            self._drain_task = asyncio.create_task(self.drain())
        return await super().on_tick(counter)

    async def drain(self) -> None:
        """Wait for the live calls, say goodbye to the ones left, then let uvicorn exit."""
        self.admission.start_draining()
        live = self.admission.live
        logger.info(
            f"Draining: refusing new calls; waiting up to {self.drain_timeout:g} s for "
            f"{live} live call(s) to end (signal again to stop at once)"
        )
        if not await self.admission.wait_idle(self.drain_timeout):
            bots = self.admission.bots()
            logger.warning(f"Drain timeout: ending {len(bots)} call(s) with a goodbye")
            for bot in bots:
                with logger.contextualize(call_sid=bot.call.call_sid):
                    try:
                        await bot.say_goodbye(DRAIN_GOODBYE, EndReason.DRAINED)
                    except Exception:
                        logger.exception("Could not say goodbye to the call")
            if not await self.admission.wait_idle(self.goodbye_timeout):
                logger.error(f"{self.admission.live} call(s) still up after the goodbye: dropped")
        logger.info("Drained: shutting down")
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, after stopping a drain a second signal cut short."""
        if self._drain_task is not None and not self._drain_task.done():
            self._drain_task.cancel()
        await super().shutdown(sockets)


def run(app: FastAPI, settings: Settings) -> None:
    """Serve `app` on `settings.host:port` until a signal, draining calls first."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_SECS,
    )
    machine: Machine | None = app.state.admission.machine
    server = DrainingServer(
        config,
        admission=app.state.admission,
        drain_timeout=settings.drain_timeout,
        machine=machine,
    )
    # A worker shares the machine's port with its siblings.
    sockets = None if machine is None else [listening_socket(settings.host, settings.port)]
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:  # a second Ctrl+C, re-raised by uvicorn once it shut down
        raise SystemExit(128 + signal.SIGINT) from None
