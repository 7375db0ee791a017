"""The operator's side, on 127.0.0.1: a tool server and an event receiver.

Both verify every request's Standard Webhooks signature with the
`standardwebhooks` library, as a real receiver would, and refuse (401) a
request that does not verify.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from tests.loopback import LoopbackServer

SECRET = "whsec_" + base64.b64encode(b"switchboard-test-signing-key-0123456789").decode()


@dataclass(frozen=True)
class Received:
    """One request that verified.

    Attributes:
        webhook_id: Its `webhook-id`.
        body: Its JSON body.
        status: What it was answered.
    """

    webhook_id: str
    body: dict[str, Any]
    status: int


class Verifying(LoopbackServer):
    """Records the requests that verify; answers 401 to those that do not."""

    def __init__(self, secret: str = SECRET) -> None:
        super().__init__()
        self._webhook = Webhook(secret)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.unverified = 0

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = self._webhook.verify(raw, dict(request.headers))
        except WebhookVerificationError:
            with self._lock:
                self.unverified += 1
            return web.Response(status=401, text="bad signature")
        webhook_id = request.headers["webhook-id"]
        status, answer = await self.answer(webhook_id, body)
        with self._lock:
            self._received.append(Received(webhook_id, body, status))
        return web.Response(status=status, text=answer, content_type="application/json")

    async def answer(self, webhook_id: str, body: dict[str, Any]) -> tuple[int, str]:
        raise NotImplementedError


class ToolServer(Verifying):
    """An HTTP tool: answers `result` (JSON) after `delay` seconds, or `status` with `raw`."""

    name = "tool-server"

    def __init__(
        self, result: Any = None, delay: float = 0.0, status: int = 200, raw: str | None = None
    ) -> None:
        super().__init__()
        self.result, self.delay, self.status, self.raw = result, delay, status, raw

    async def answer(self, webhook_id: str, body: dict[str, Any]) -> tuple[int, str]:
        await asyncio.sleep(self.delay)
        return self.status, self.raw if self.raw is not None else json.dumps(self.result)


class EventReceiver(Verifying):
    """Takes events; `failures(webhook_id, attempt)` says which attempts to fail, and how."""

    name = "event-receiver"

    def __init__(
        self, failures: Callable[[str, int], int | None] = lambda _id, _n: None, delay: float = 0
    ) -> None:
        super().__init__()
        self.failures = failures
        self.delay = delay
        self._attempts: Counter[str] = Counter()

    async def answer(self, webhook_id: str, body: dict[str, Any]) -> tuple[int, str]:
        with self._lock:
            self._attempts[webhook_id] += 1
            attempt = self._attempts[webhook_id]
        if self.delay:
            await asyncio.sleep(self.delay)
        failure = self.failures(webhook_id, attempt)
        return (failure, "{}") if failure is not None else (200, "{}")

    @property
    def delivered(self) -> list[Received]:
        """The events taken (answered 2xx), in the order they came."""
        return [r for r in self.received if 200 <= r.status < 300]

    async def wait_for_attempts(self, count: int, within: float = 60) -> None:
        """Wait until `count` requests came, whatever they were answered."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.received) < count:
            assert asyncio.get_running_loop().time() < deadline, f"not {count} attempts"
            await asyncio.sleep(0.05)

    async def wait_for(self, count: int, within: float = 60) -> list[Received]:
        """Wait until `count` events were taken; return them."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.delivered) < count:
            if asyncio.get_running_loop().time() > deadline:
                got = [(r.body["type"], r.status) for r in self.received]
                raise AssertionError(f"{count} events not delivered within {within} s: {got}")
            await asyncio.sleep(0.1)
        return self.delivered
