"""An aiohttp app served on 127.0.0.1 from a background thread: the base of the test fakes."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import Self

from aiohttp import web

from tests.lifecycle import Service


class LoopbackServer(Service):
    """Serves `handle` for every method and path; subclasses implement it.

    Attributes:
        base_url: Where it listens, e.g. ``http://127.0.0.1:PORT``.
    """

    name = "loopback"
    ssl_context: ssl.SSLContext | None = None  # set: HTTPS

    def __init__(self) -> None:
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def start(self) -> Self:
        """Start serving; returns once the port accepts connections."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        scheme = "https" if self.ssl_context else "http"
        self.base_url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(self._loop, sock, ready), name=self.name, daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError(f"the {self.name} server did not start")
        return self

    def _serve(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, ready: threading.Event
    ) -> None:
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock, ssl_context=self.ssl_context).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = self._thread = None
