"""Server-sent events for the console's pages that update by themselves.

A feed polls its source every `POLL_SECS` and sends an event only when what it
shows changed, with a comment now and then so proxies keep the connection. It
ends after `LIFETIME_SECS` (the browser reconnects, maybe to another replica)
or when the browser goes away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

POLL_SECS = 0.5
KEEPALIVE_SECS = 15.0
LIFETIME_SECS = 120.0
# How long the browser waits before it reconnects to a feed that ended.
RETRY_MS = 1000

# One poll: the events to send now, as (name, data, id) triples, and whether the feed is over.
Poll = Callable[[], Awaitable[tuple[list[tuple[str, Any, int | None]], bool]]]


def event(name: str, data: Any, id: int | None = None) -> str:
    """One server-sent event, its data as one line of JSON.

    Args:
        name: The event's type.
        data: Its data, JSON-ready.
        id: Where it stands in the feed: a browser that reconnects says the last one it got.
    """
    line = "" if id is None else f"id: {id}\n"
    return f"{line}event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def feed(request: Request, poll: Poll) -> StreamingResponse:
    """Stream what `poll` finds, polling until the feed's lifetime ends or the browser leaves."""

    async def stream() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        began = last_sent = time.monotonic()
        while time.monotonic() - began < LIFETIME_SECS:
            events, over = await poll()
            for name, data, id in events:
                yield event(name, data, id)
                last_sent = time.monotonic()
            if over or await request.is_disconnected():
                return
            if time.monotonic() - last_sent > KEEPALIVE_SECS:
                yield ": still here\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(POLL_SECS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class Changes:
    """Remembers the last value sent, so a feed sends only what changed."""

    def __init__(self) -> None:
        self._last: str | None = None

    def changed(self, value: Any) -> bool:
        """Whether `value` differs from the one seen last time (and remember it)."""
        text = json.dumps(value, sort_keys=True, default=str)
        if text == self._last:
            return False
        self._last = text
        return True
