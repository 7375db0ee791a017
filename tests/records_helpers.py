"""What the call-record tests share: reading a server's records as they are written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from records.models import Call
from records.store import CallStore
from simulator import SimulatedCall


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


async def say_after_the_greeting(store: CallStore, call: SimulatedCall, speech: bytes) -> None:
    """Say `speech` once the greeting is on record and heard out; wait for the reply's record.

    Returns once three turns are on record: the greeting, the caller's and the bot's reply.
    """
    await record_when(store, call.call_sid, ready="turns", turns=1)
    await call.wait_for_bot_quiet(quiet=1.0)
    await call.say(speech)
    await record_when(store, call.call_sid, ready="turns", turns=3)
