"""Records across processes: a server killed mid-call, and two replicas sharing PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from ops.drain import DRAIN_GOODBYE
from simulator import SimulatedCall, parse_twiml
from tests.conversation import speak, words
from tests.postgres import PostgresServer
from tests.records_helpers import reading, record_when, say_after_the_greeting
from tests.server_process import ServerProcess

TOKEN = "replica-auth-token-0123456789abcdef"
PUBLIC_URL = "https://switchboard.test"


@pytest.mark.speech
async def test_a_server_killed_mid_call_leaves_the_finished_turns(
    database_url: str, tmp_path: Path
) -> None:
    hello = await speak("My parcel never arrived at my house.")
    with ServerProcess(tmp_path, database_url=database_url) as server:
        call = SimulatedCall(server.url)
        await call.dial()
        async with reading(database_url) as store:
            # Greeting, the caller's words, the echo: each on record once over.
            await say_after_the_greeting(store, call, hello)
        server.kill()
        try:
            await call.wait_closed(timeout=10)
        finally:
            await call.hang_up()
    assert call.closed_by == "server"

    async with reading(database_url) as store:
        record = await store.get_call(call.call_sid)
    assert record is not None
    assert [turn.role for turn in record.turns] == ["assistant", "user", "assistant"]
    assert {"parcel", "arrived"} <= words(record.turns[1].text), record.turns[1].text
    assert record.turns[2].text.startswith("I heard:")
    # Nobody was left to write the end: the record shows a call that never finished.
    assert record.status == "in-progress"
    assert record.ended_at is None and record.end_reason is None


@pytest.mark.speech
async def test_webhook_on_one_replica_stream_on_another_one_record(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    hello = await speak("This is the second replica speaking.")
    shared = {"database_url": url, "public_url": PUBLIC_URL, "twilio_auth_token": TOKEN}
    with ServerProcess(tmp_path, **shared) as one, ServerProcess(tmp_path, **shared) as other:
        call = SimulatedCall(other.url, auth_token=TOKEN)
        # Twilio signs what it requests: the public URL the load balancer answers on.
        form = call.webhook_params()
        webhook = f"{PUBLIC_URL}/?customer=42"
        signature = RequestValidator(TOKEN).compute_signature(webhook, form)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{one.url}/?customer=42", data=form, headers={"X-Twilio-Signature": signature}
            ) as response,
        ):
            assert response.status == 200
            stream_url, parameters = parse_twiml(await response.text())
        assert stream_url == "wss://switchboard.test/ws"

        async with reading(url) as store:
            async with call:
                await call.connect_stream(stream_url, parameters)
                await say_after_the_greeting(store, call, hello)
            assert call.closed_by == "caller"
            record = await record_when(store, call.call_sid)
            page = await store.list_calls()
        one_log, other_log = one.log(), other.log()

    assert call.call_sid in one_log and "Incoming call" in one_log
    assert "Call started" not in one_log
    assert call.call_sid in other_log and "Call started" in other_log
    assert page.total == 1
    assert record.parameters == {"customer": "42"}
    assert (record.from_number, record.to_number) == (call.from_number, call.to_number)
    assert (record.end_reason, record.status) == ("caller_hung_up", "completed")
    assert record.answered_at is not None and record.started_at <= record.answered_at
    assert [turn.role for turn in record.turns] == ["assistant", "user", "assistant"]
    assert "replica" in words(record.turns[1].text) or "second" in words(record.turns[1].text)


@pytest.mark.speech
async def test_a_call_drained_on_deploy_is_recorded_as_drained(
    database_url: str, tmp_path: Path
) -> None:
    hello = await speak("I would like to book a table.")
    with ServerProcess(tmp_path, database_url=database_url, drain_timeout="0") as server:
        async with reading(database_url) as store, SimulatedCall(server.url) as call:
            await call.dial()
            await say_after_the_greeting(store, call, hello)
            exit_code = await asyncio.to_thread(server.terminate)
            record = await record_when(store, call.call_sid)
    assert exit_code == 0
    assert call.closed_by == "server"
    assert (record.end_reason, record.status) == ("drained", "completed")
    turns = [(turn.role, turn.text) for turn in record.turns]
    assert [role for role, _ in turns] == ["assistant", "user", "assistant", "assistant"], turns
    assert turns[-1][1] == DRAIN_GOODBYE
