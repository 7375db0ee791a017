"""Nothing recorded is lost: the last turn at a hang-up, slow or failing writes, a deploy."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loguru import logger
from sqlalchemy import text

from simulator import SimulatedCall
from tests.conftest import MakeServer
from tests.conversation import QUIET, speak, words
from tests.ops_helpers import scrape, value
from tests.postgres import PostgresServer
from tests.records_helpers import (
    admin,
    greeting_heard,
    reading,
    record_when,
    refuse_connections,
)
from tests.server_process import ServerProcess

FAILURES = "switchboard_record_write_failures_total"

# The echo says it back sentence by sentence; the caller hangs up during the second.
# The sentences are joined by a short breath: Piper's own gap between them (0.5 s, most
# of it before "My") is at the edge of the pause a caller may take, and would split the
# turn at times; this test is about the hang-up, not the pause.
STORY = (
    "Good morning.",
    "My order came on Monday with a broken lid, and the replacement they "
    "promised me has still not arrived at my house.",
)

BREATH = bytes(int(0.15 * 8000) * 2)
FIRST_SENTENCE_SECS = 4.0


def trimmed(pcm: bytes) -> bytes:
    """`pcm` without the near-silence Piper puts before and after the words."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples) > 64)
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud.size else pcm


@pytest.mark.speech
async def test_the_reply_cut_short_by_a_hang_up_is_recorded(
    make_server: MakeServer, database_url: str
) -> None:
    server = make_server(database_url=database_url)
    story = trimmed(await speak(STORY[0])) + BREATH + trimmed(await speak(STORY[1]))
    async with reading(database_url) as store:
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await greeting_heard(store, call)
            said_at = await call.say(story)
            replied_at = await call.wait_for_bot_audio(after=said_at, timeout=30)
            # "I heard: Good morning." has played out, the rest has not.
            await asyncio.sleep(replied_at + FIRST_SENTENCE_SECS - time.monotonic())
        record = await record_when(store, call.call_sid)
    turns = [(turn.role, turn.text) for turn in record.turns]
    assert [role for role, _ in turns] == ["assistant", "user", "assistant"], turns
    assert len({"order", "broken", "replacement", "promised"} & words(turns[1][1])) >= 3, turns
    assert turns[2][1].startswith("I heard"), turns
    # What the caller heard, and not what the hang-up cut.
    assert "morning" in words(turns[2][1]), turns
    assert "house" not in words(turns[2][1]), turns


@pytest.mark.speech
async def test_what_the_caller_said_just_before_hanging_up_is_recorded(
    make_server: MakeServer, database_url: str
) -> None:
    server = make_server(database_url=database_url)
    last_words = await speak("Please cancel my subscription today.")
    async with reading(database_url) as store:
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await greeting_heard(store, call)
            await call.say(last_words)
            await asyncio.sleep(0.3)  # and hangs up, before any reply
        record = await record_when(store, call.call_sid)
    turns = [(turn.role, turn.text) for turn in record.turns]
    assert [role for role, _ in turns][:2] == ["assistant", "user"], turns
    assert {"cancel", "subscription"} <= words(turns[1][1]), turns


@pytest.fixture
def errors_logged() -> Iterator[list[dict[str, Any]]]:
    """The ERROR records loguru writes during the test."""
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(dict(message.record)), level="ERROR")
    yield records
    logger.remove(sink)


async def talk(store: Any, call: SimulatedCall, speech: bytes) -> None:
    """Once the greeting is on record and heard out, say `speech` and hear the reply out."""
    await greeting_heard(store, call)
    said_at = await call.say(speech)
    await call.wait_for_bot_audio(after=said_at, timeout=30)
    await call.wait_for_bot_quiet(QUIET, timeout=30)


@pytest.mark.speech
async def test_a_write_the_database_refuses_is_counted_and_logged_with_the_call_sid(
    make_server: MakeServer, postgres: PostgresServer, errors_logged: list[dict[str, Any]]
) -> None:
    url = postgres.create_database()
    server = make_server(database_url=url)
    async with admin(url) as connection:  # the server migrated at start-up
        await connection.execute(
            text("ALTER TABLE turns ADD CONSTRAINT no_callers CHECK (role <> 'user')")
        )
    speech = await speak("I need to change my delivery address.")
    async with reading(url) as store:
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await talk(store, call, speech)
        record = await record_when(store, call.call_sid)

    assert [turn.role for turn in record.turns] == ["assistant", "assistant"]
    assert value(await scrape(server.url), FAILURES) == 1
    lost = [r for r in errors_logged if "write(s) lost" in r["message"]]
    assert [r["extra"].get("call_sid") for r in lost] == [call.call_sid], errors_logged
    assert "CheckViolation" in lost[0]["message"] or "no_callers" in lost[0]["message"]
    assert "delivery" not in lost[0]["message"]  # never what was said


@pytest.mark.speech
async def test_writes_are_retried_while_the_database_refuses_connections(
    make_server: MakeServer, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    server = make_server(database_url=url)
    speech = await speak("Could you check the status of my refund?")
    async with reading(url) as store:
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await greeting_heard(store, call)
            await refuse_connections(url, refuse=True)
            try:
                said_at = await call.say(speech)
                await call.wait_for_bot_audio(after=said_at, timeout=30)
                await asyncio.sleep(1.0)  # the turns' first tries fail meanwhile
            finally:
                await refuse_connections(url, refuse=False)
            await call.wait_for_bot_quiet(QUIET, timeout=30)
        await store.close()  # its connections were cut too
        record = await record_when(store, call.call_sid)

    turns = [(turn.role, turn.text) for turn in record.turns]
    assert [role for role, _ in turns] == ["assistant", "user", "assistant"], turns
    assert {"refund", "status"} <= words(turns[1][1]), turns
    assert value(await scrape(server.url), FAILURES) == 0


@pytest.mark.speech
async def test_sigterm_waits_for_the_writes_a_slow_database_holds_up(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    speech = await speak("Please send me a copy of my last statement.")
    with ServerProcess(tmp_path, database_url=url) as server:
        async with reading(url) as store, admin(url) as blocker:
            call = SimulatedCall(server.url)
            async with call:
                await call.dial()
                await greeting_heard(store, call)
                # Another session holds both tables: every write waits behind it.
                await blocker.execute(text("BEGIN"))
                await blocker.execute(text("LOCK TABLE calls, turns IN ACCESS EXCLUSIVE MODE"))
                said_at = await call.say(speech)
                await call.wait_for_bot_audio(after=said_at, timeout=30)
                await call.wait_for_bot_quiet(QUIET, timeout=30)
            server.signal(signal.SIGTERM)
            # Longer than a call's end waits for its writes, shorter than shutdown does.
            await asyncio.sleep(12)
            assert server.poll() is None, "the server exited with its writes still queued"
            await blocker.execute(text("COMMIT"))
            exit_code = await asyncio.to_thread(server.wait, 60)
            record = await record_when(store, call.call_sid)
    assert exit_code == 0
    turns = [(turn.role, turn.text) for turn in record.turns]
    assert [role for role, _ in turns] == ["assistant", "user", "assistant"], turns
    assert {"copy", "statement"} & words(turns[1][1]), turns
    assert (record.end_reason, record.status) == ("caller_hung_up", "completed")
