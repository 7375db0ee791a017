"""Events: every call change the operator hears about reaches their webhook, once, in order,
through failures, a killed server and several replicas.

The receiver verifies each event's Standard Webhooks signature with the library.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from assistants.registry import Assistants
from events import sender as sender_module
from events.builders import EventBuilder
from events.sender import CLIENT_ERROR_ATTEMPTS, EventMetrics, EventSender
from records.models import Event, Turn, TurnRole
from records.outbox import Outbox
from records.store import CallStore
from simulator import SimulatedCall
from telephony.call_info import CallInfo
from tests.conftest import MakeServer, offline_settings
from tests.ops_helpers import scrape, value
from tests.postgres import PostgresServer
from tests.records_helpers import record_when
from tests.server_process import ServerProcess
from tests.webhook_servers import SECRET, EventReceiver, Received

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


async def outbox_rows(store: CallStore) -> list[Event]:
    async with store.engine.connect() as connection:
        result = await connection.execute(select(Event).order_by(Event.id))
        return list(result.all())  # type: ignore[arg-type]


def by_call(delivered: list[Received]) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {}
    for received in delivered:
        calls.setdefault(received.body["data"]["call_sid"], []).append(received.body["type"])
    return calls


def listening(store: CallStore, url: str | None = "https://crm.example.com/events") -> None:
    settings = offline_settings(webhook_secret=SECRET)
    store.events = EventBuilder(Assistants(settings), url, lambda: None)


async def test_record_changes_write_their_events_with_them(store: CallStore) -> None:
    listening(store)
    call = CallInfo(
        "twilio", "CA1", "MZ1", from_number="+15550001111", to_number="+15550002222",
        parameters={"customer": "42"},
    )  # fmt: skip
    await store.start_call(call, at=T0)
    await store.add_turn("CA1", 1, TurnRole.ASSISTANT, "Hello!", T0)
    turn = Turn(call_sid="CA1", seq=2, role="tool", text="lookup({}) → {}", at=T0)
    await store.tool_called("CA1", turn, {"tool": "lookup", "outcome": "ok", "result": {}})
    await store.transferred("CA1", {"target": "+15553330000"})
    await store.end_call("CA1", "bot_ended", at=T0 + timedelta(seconds=12.5),
                         details={"reply_latencies": [0.81234, 0.7]})  # fmt: skip
    await store.end_call("CA1", "error")  # already ended: no second event
    await store.update_status("CA2", "ringing", sequence=1)
    await store.update_status("CA2", "ringing", sequence=1)  # stale, yet a callback: told

    rows = await outbox_rows(store)
    assert [(r.type, r.call_sid) for r in rows] == [
        ("call.started", "CA1"),
        ("tool.called", "CA1"),
        ("call.transferred", "CA1"),
        ("call.ended", "CA1"),
        ("dialout.status", "CA2"),
        ("dialout.status", "CA2"),
    ]
    assert len({r.event_id for r in rows}) == len(rows)
    assert all(r.url == "https://crm.example.com/events" and r.state == "pending" for r in rows)
    ended = json.loads(rows[3].payload)
    assert ended["type"] == "call.ended" and ended["timestamp"].endswith("Z")
    data = ended["data"]
    assert (data["call_sid"], data["from"], data["to"]) == ("CA1", "+15550001111", "+15550002222")
    assert data["parameters"] == {"customer": "42"} and data["assistant"] is None
    assert (data["end_reason"], data["status"], data["duration"]) == (
        "bot_ended",
        "completed",
        12.5,
    )
    assert [(t["seq"], t["role"]) for t in data["transcript"]] == [(1, "assistant"), (2, "tool")]
    assert data["recording"] is None and data["reply_latencies"] == [0.812, 0.7]
    assert json.loads(rows[2].payload)["data"]["target"] == "+15553330000"
    assert json.loads(rows[4].payload)["data"]["status"] == "ringing"


async def test_nothing_is_written_when_nobody_listens(store: CallStore) -> None:
    listening(store, url=None)
    await store.start_call(CallInfo("twilio", "CA1", "MZ1"), at=T0)
    await store.end_call("CA1", "caller_hung_up")
    assert await outbox_rows(store) == []


async def sender_for(store: CallStore, receiver: EventReceiver) -> EventSender:
    events_url = f"{receiver.base_url}/events"
    settings = offline_settings(webhook_secret=SECRET, events_url=events_url)
    return EventSender(Outbox(store.engine), settings, EventMetrics(CollectorRegistry()))


async def test_a_receiver_answering_410_gets_nothing_more(
    store: CallStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "backoff", lambda attempts: 0.0)
    with EventReceiver(failures=lambda _id, _n: 410) as receiver:
        listening(store, f"{receiver.base_url}/events")
        sender = await sender_for(store, receiver)
        await store.update_status("CA1", "ringing")
        assert await sender.deliver_due() == 1
        for sid in ("CA2", "CA3"):  # after the 410: dropped unsent
            await store.update_status(sid, "ringing")
        while await sender.deliver_due():
            pass
        await sender.stop()
    assert len(receiver.received) == 1
    assert [r.state for r in await outbox_rows(store)] == ["failed"] * 3


async def test_other_4xx_are_given_up_after_a_few_attempts_and_408_429_5xx_retried(
    store: CallStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "backoff", lambda attempts: 0.0)
    answers = {"CA400": [400] * 10, "CA429": [429, 408, 503], "CA500": [500] * 7}

    def failures(webhook_id: str, attempt: int) -> int | None:
        planned = answers[sids[webhook_id]]
        return planned[attempt - 1] if attempt <= len(planned) else None

    with EventReceiver(failures=failures) as receiver:
        listening(store, f"{receiver.base_url}/events")
        for sid in answers:
            await store.update_status(sid, "ringing")
        sids = {r.event_id: r.call_sid or "" for r in await outbox_rows(store)}
        sender = await sender_for(store, receiver)
        for _ in range(12):
            await sender.deliver_due()
        await sender.stop()
    states = {r.call_sid: (r.state, r.attempts) for r in await outbox_rows(store)}
    assert states == {
        "CA400": ("failed", CLIENT_ERROR_ATTEMPTS),
        "CA429": ("delivered", 4),
        "CA500": ("delivered", 8),
    }
    assert receiver.unverified == 0


async def test_events_survive_a_failing_receiver_and_a_killed_server(
    database_url: str, tmp_path: Path
) -> None:
    """The receiver answers 500 to the first three attempts at each event; the server is
    SIGKILLed while events wait for their next attempt, and restarted."""
    url = database_url.replace("+aiosqlite", "")
    with EventReceiver(failures=lambda _id, attempt: 500 if attempt <= 3 else None) as receiver:
        settings = {"database_url": url, "webhook_secret": SECRET}
        settings["events_url"] = f"{receiver.base_url}/events"
        with ServerProcess(tmp_path, **settings) as first:
            async with _store(database_url) as reader:
                sids = await asyncio.gather(*(short_call(first.url, reader) for _ in range(2)))
                for sid in sids:
                    await record_when(reader, sid)
            await receiver.wait_for_attempts(4)
            first.kill()
        attempts_before = len(receiver.received)
        with ServerProcess(tmp_path, **settings):
            delivered = await receiver.wait_for(4, within=60)
            await asyncio.sleep(1.5)  # nothing more comes
        received = receiver.received

    assert attempts_before < len(received) and receiver.unverified == 0
    assert all(Counter(r.webhook_id for r in received)[r.webhook_id] == 4 for r in delivered)
    assert by_call(delivered) == {sid: ["call.started", "call.ended"] for sid in sids}
    counts = Counter(r.webhook_id for r in delivered)
    assert len(counts) == 4 and set(counts.values()) == {1}, counts
    async with _store(database_url) as reader:
        rows = await outbox_rows(reader)
    assert {r.event_id for r in rows} == set(counts)
    assert all(r.state == "delivered" for r in rows)
    ended = next(r.body["data"] for r in delivered if r.body["type"] == "call.ended")
    assert ended["end_reason"] == "caller_hung_up" and ended["duration"] > 0
    assert ended["transcript"][0]["role"] == "assistant"


async def short_call(url: str, reader: CallStore) -> str:
    """A call that hangs up once the greeting is on record."""
    async with SimulatedCall(url) as call:
        await call.dial()
        await record_when(reader, call.call_sid, ready="turns", turns=1)
    return call.call_sid


class _store:
    def __init__(self, url: str) -> None:
        self.store = CallStore(url)

    async def __aenter__(self) -> CallStore:
        return self.store

    async def __aexit__(self, *exc: Any) -> None:
        await self.store.close()


async def test_two_replicas_deliver_each_event_once(
    make_server: MakeServer, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    with EventReceiver(delay=0.01) as receiver:
        settings = {"database_url": url, "webhook_secret": SECRET}
        settings["events_url"] = f"{receiver.base_url}/events"
        replicas = [make_server(**settings) for _ in range(2)]
        async with _store(url) as writer:
            listening(writer, settings["events_url"])
            for sequence in range(3):
                await asyncio.gather(
                    *(
                        writer.update_status(f"CA{n:03}", "ringing", sequence=sequence)
                        for n in range(40)
                    )
                )
            delivered = await receiver.wait_for(120, within=60)
        await asyncio.sleep(1.5)  # nothing more comes
        delivered = receiver.delivered

    counts = Counter(r.webhook_id for r in delivered)
    assert len(counts) == 120 and set(counts.values()) == {1}
    for sid, kinds in by_call(delivered).items():
        sequences = [
            r.body["data"]["sequence"] for r in delivered if r.body["data"]["call_sid"] == sid
        ]
        assert sequences == [0, 1, 2] and len(kinds) == 3, (sid, sequences)
    sent = [
        value(await scrape(r.url), "switchboard_event_deliveries_total", outcome="delivered")
        for r in replicas
    ]
    assert sum(sent) == 120, sent
