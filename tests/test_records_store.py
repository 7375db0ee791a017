"""The call-record store, against SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from records.database import alembic_config, async_database_url, printable_url
from records.models import REJECTED, TurnRole
from records.store import CallStore
from telephony.call_info import CallInfo
from tests.postgres import PostgresServer

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def call_info(sid: str = "CA" + "1" * 32, direction: str = "inbound") -> CallInfo:
    return CallInfo(
        provider="twilio",
        call_sid=sid,
        stream_sid="MZ" + "2" * 32,
        from_number="+15550001111",
        to_number="+15550002222",
        direction=direction,
        parameters={"customer": "42"},
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CallStore]:
    store = CallStore(database_url)
    await store.migrate()
    yield store
    await store.close()


async def test_migrations_create_the_tables_and_run_again_harmlessly(store: CallStore) -> None:
    await store.migrate()

    async with store.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).one()
        columns = await connection.run_sync(
            lambda c: {column["name"] for column in inspect(c).get_columns("calls")}
        )
    assert {"calls", "turns", "events", "alembic_version"} <= tables
    assert version == (ScriptDirectory.from_config(alembic_config()).get_current_head(),)
    assert {"recording_source", "recording_location", "recording_duration"} <= columns
    assert {"attempt_id", "idempotency_key", "request_hash", "answer"} <= columns


async def test_values_longer_than_a_short_column_are_stored_whole(store: CallStore) -> None:
    # A SIP caller's address, and a provider's call id longer than Twilio's, in full.
    sid = "sip-call-" + "7" * 90
    caller = "sip:" + "a-very-long-user-name." * 5 + "@pbx.example.com;transport=tls"
    callee = "sip:" + "reception-desk." * 6 + "@example.org"
    await store.note_call(sid, from_number=caller, to_number=callee, parameters={}, at=T0)
    await store.update_status(sid, "in-progress", answered_by="machine_end_other" * 3)
    await store.add_turn(sid, 1, TurnRole.USER, "hello", T0)
    await store.end_call(sid, "caller_hung_up", at=T0 + timedelta(seconds=5))

    record = await store.get_call(sid)
    assert record is not None
    assert (record.sid, record.from_number, record.to_number) == (sid, caller, callee)
    assert record.answered_by == "machine_end_other" * 3
    assert [turn.text for turn in record.turns] == ["hello"]


async def test_replicas_starting_together_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    replicas = [CallStore(url) for _ in range(4)]
    try:
        await asyncio.gather(*(replica.migrate() for replica in replicas))
        await replicas[0].start_call(call_info())
    finally:
        await asyncio.gather(*(replica.close() for replica in replicas))


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = CallStore(f"sqlite:///{tmp_path}/nested/folder/calls.db")
    await store.migrate()
    async with store.engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    await store.close()
    assert mode == "wal"


async def test_a_call_with_its_transcript_reads_back_in_order(store: CallStore) -> None:
    call = call_info()
    await store.start_call(call, at=T0)
    await store.add_turn(call.call_sid, 1, TurnRole.ASSISTANT, "Hello!", T0)
    await store.add_turn(call.call_sid, 2, TurnRole.USER, "Hi there.", T0 + timedelta(seconds=2))
    await store.add_turn(call.call_sid, 3, TurnRole.DTMF, "42#", T0 + timedelta(seconds=5))
    await store.end_call(call.call_sid, "bot_ended", at=T0 + timedelta(seconds=9))

    record = await store.get_call(call.call_sid)

    assert record is not None
    assert (record.provider, record.direction) == ("twilio", "inbound")
    assert (record.from_number, record.to_number) == ("+15550001111", "+15550002222")
    assert record.parameters == {"customer": "42"}
    assert record.started_at == T0 and record.answered_at == T0
    assert record.started_at.tzinfo is not None
    assert record.ended_at == T0 + timedelta(seconds=9)
    assert (record.end_reason, record.status) == ("bot_ended", "completed")
    assert [(t.seq, t.role, t.text) for t in record.turns] == [
        (1, "assistant", "Hello!"),
        (2, "user", "Hi there."),
        (3, "dtmf", "42#"),
    ]
    assert record.turns[1].at == T0 + timedelta(seconds=2)


async def test_webhook_and_stream_make_one_record_in_either_order(store: CallStore) -> None:
    early, late = call_info("CA" + "a" * 32), call_info("CA" + "b" * 32)
    # The webhook's note arrives first for one call, after the stream for the other.
    await store.note_call(early.call_sid, direction="inbound", status="ringing", at=T0)
    await store.start_call(early, at=T0 + timedelta(seconds=1))
    await store.start_call(late, at=T0 + timedelta(seconds=1))
    await store.note_call(late.call_sid, direction="inbound", status="ringing", at=T0)

    for call in (early, late):
        record = await store.get_call(call.call_sid)
        assert record is not None
        assert record.started_at == T0
        assert record.answered_at == T0 + timedelta(seconds=1)
        assert record.status == "in-progress"
        assert record.parameters == {"customer": "42"}
    assert (await store.list_calls()).total == 2


async def test_replicas_writing_the_same_call_at_once_make_one_record(
    store: CallStore, database_url: str
) -> None:
    other_replica = CallStore(database_url)
    call = call_info()
    try:
        await asyncio.gather(
            *(
                writer.note_call(call.call_sid, direction="inbound", status="ringing")
                for writer in (store, other_replica) * 5
            ),
            other_replica.start_call(call),
            store.update_status(call.call_sid, "in-progress", sequence=1),
        )
    finally:
        await other_replica.close()

    page = await store.list_calls()
    assert page.total == 1
    assert page.calls[0].status == "in-progress"


async def test_status_callbacks_out_of_order_never_go_back(store: CallStore) -> None:
    sid = "CA" + "c" * 32
    await store.note_call(sid, direction="outbound", to_number="+15550003333", status="queued")
    await store.update_status(sid, "ringing", sequence=1, at=T0)
    await store.update_status(sid, "in-progress", answered_by="human", sequence=2, at=T0)
    stale = await store.update_status(sid, "ringing", sequence=1)
    assert stale is not None and stale.status == "in-progress"
    done = await store.update_status(sid, "completed", duration=31, sequence=3, at=T0)
    after_final = await store.update_status(sid, "in-progress", sequence=9)

    assert after_final is not None and after_final.status == "completed"
    record = await store.get_call(sid)
    assert record is not None
    assert (record.status, record.answered_by, record.duration) == ("completed", "human", 31)
    assert record.answered_at == T0 and record.ended_at == T0
    assert done is not None
    assert (done.direction, done.to_number) == ("outbound", "+15550003333")
    assert done.updated_at is not None and done.updated_at > T0


async def test_status_of_a_call_not_on_record_is_left_alone_when_asked(
    store: CallStore,
) -> None:
    stranger = "CA" + "f" * 32
    assert await store.update_status(stranger, "ringing", sequence=1, create=False) is None
    assert await store.get_call(stranger) is None
    created = await store.update_status(stranger, "ringing", sequence=1)
    assert created is not None and created.status == "ringing"


async def test_a_rejected_call_is_busy(store: CallStore) -> None:
    sid = "CA" + "d" * 32
    await store.note_call(sid, direction="inbound", from_number="+15550001111")
    await store.end_call(sid, REJECTED)

    record = await store.get_call(sid)
    assert record is not None
    assert (record.end_reason, record.status, record.answered_at) == ("rejected", "busy", None)


async def test_a_turn_for_an_unknown_call_creates_its_record(store: CallStore) -> None:
    # The stream's start may have failed to write; the transcript still has a home.
    await store.add_turn("CA" + "e" * 32, 1, TurnRole.USER, "hello", T0)

    record = await store.get_call("CA" + "e" * 32)
    assert record is not None
    assert [t.text for t in record.turns] == ["hello"]


async def test_list_filters_and_pages(store: CallStore) -> None:
    for i in range(7):
        call = call_info(f"CA{i:032x}", "outbound" if i % 2 else "inbound")
        await store.start_call(call, at=T0 + timedelta(hours=i))
        if i < 5:
            await store.end_call(call.call_sid, "caller_hung_up", at=T0 + timedelta(hours=i))

    everything = await store.list_calls()
    assert everything.total == 7
    assert [c.sid for c in everything.calls] == [f"CA{i:032x}" for i in reversed(range(7))]
    outbound = await store.list_calls(direction="outbound")
    assert sorted(c.sid for c in outbound.calls) == [f"CA{i:032x}" for i in (1, 3, 5)]
    live = await store.list_calls(status="in-progress")
    assert sorted(c.sid for c in live.calls) == [f"CA{i:032x}" for i in (5, 6)]
    window = await store.list_calls(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4))
    assert sorted(c.sid for c in window.calls) == [f"CA{i:032x}" for i in (2, 3)]
    second_page = await store.list_calls(limit=3, offset=3)
    assert second_page.total == 7
    assert [c.sid for c in second_page.calls] == [f"CA{i:032x}" for i in (3, 2, 1)]


def test_database_urls_are_turned_to_their_async_drivers() -> None:
    assert async_database_url("sqlite:///./data/x.db") == "sqlite+aiosqlite:///./data/x.db"
    assert (
        async_database_url("postgres://sb:s3cret@db:5432/calls")
        == "postgresql+asyncpg://sb:s3cret@db:5432/calls"
    )
    assert async_database_url("postgresql+asyncpg://db/calls") == "postgresql+asyncpg://db/calls"
    assert "s3cret" not in printable_url("postgresql://sb:s3cret@db/calls")
    with pytest.raises(ValueError, match="not supported"):
        async_database_url("mysql://sb:s3cret@db/calls")
    with pytest.raises(ValueError, match="not a database URL") as error:
        async_database_url("s3cret nonsense")
    assert "s3cret" not in str(error.value)
