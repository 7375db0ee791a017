"""What the call-record tests share: reading a server's records as they are written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

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


async def greeting_heard(store: CallStore, call: SimulatedCall) -> None:
    """Wait until the greeting is on record and the caller has heard it out."""
    await record_when(store, call.call_sid, ready="turns", turns=1)
    await call.wait_for_bot_quiet(quiet=1.0)


async def say_after_the_greeting(store: CallStore, call: SimulatedCall, speech: bytes) -> None:
    """Say `speech` once the greeting is on record and heard out; wait for the reply's record.

    Returns once three turns are on record: the greeting, the caller's and the bot's reply.
    """
    await greeting_heard(store, call)
    await call.say(speech)
    await record_when(store, call.call_sid, ready="turns", turns=3)


@asynccontextmanager
async def admin(url: str, database: str | None = None) -> AsyncIterator[AsyncConnection]:
    """A connection to the server's database (or another of the cluster), autocommitting."""
    target = make_url(url) if database is None else make_url(url).set(database=database)
    engine = create_async_engine(target, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def refuse_connections(url: str, refuse: bool) -> None:
    """Have PostgreSQL refuse (and cut) every connection to the database, or take them again."""
    name = make_url(url).database
    async with admin(url, database="postgres") as connection:
        await connection.execute(
            text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')
        )
        if refuse:
            await connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
