"""What the call-record tests share: reading a server's records as they are written."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from records.models import Call
from records.store import CallStore


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@asynccontextmanager
async def reading(database_url: str) -> AsyncIterator[CallStore]:
    """A store of the test's own on the server's database (another connection, as a reader)."""
    store = CallStore(database_url)
    try:
        yield store
    finally:
        await store.close()


async def record_when(
    store: CallStore,
    call_sid: str,
    ready: str = "ended",
    turns: int = 0,
    within: float = 30,
) -> Call:
    """Poll until the server recorded the call's end (or `turns` turns); return it.

    Args:
        store: Where to read.
        call_sid: The call.
        ready: `ended` to wait for its end reason, `turns` to wait for `turns` turns.
        turns: How many turns, with `ready="turns"`.
        within: Seconds to wait before failing the test.
    """
    deadline = time.monotonic() + within
    while True:
        call = await store.get_call(call_sid)
        done = call is not None and (
            call.end_reason is not None if ready == "ended" else len(call.turns) >= turns
        )
        if done:
            assert call is not None
            return call
        if time.monotonic() > deadline:
            have = [(t.role, t.text) for t in call.turns] if call else "no record"
            raise AssertionError(f"call {call_sid} not {ready} within {within} s: {have}")
        await asyncio.sleep(0.2)
