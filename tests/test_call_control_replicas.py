"""Play and say from any replica: two servers on one PostgreSQL database, the call on one,
the request to the other, which relays it through LISTEN/NOTIFY to the one holding the call.

Two servers with separate state stand in for two processes (as in tests/test_replicas.py);
tests/test_proxy.py does the same with two `python server.py` processes behind nginx.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import asyncpg

from simulator import SimulatedCall
from tests.conftest import MakeServer, Transcribe
from tests.conversation import QUIET, hear_greeting, words
from tests.ops_helpers import eventually
from tests.postgres import PostgresServer
from tests.recording_helpers import post, write_prompt
from tests.records_helpers import reading, record_when
from tests.test_call_control import control_server, hear_next
from tests.test_dialin import post_webhook


async def test_a_say_sent_to_the_other_replica_is_heard_in_the_call(
    make_server: MakeServer, postgres: PostgresServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    database_url = postgres.create_database()
    holding = control_server(make_server, tmp_path, database_url=database_url)
    other = control_server(make_server, tmp_path / "other", database_url=database_url)
    await write_prompt(tmp_path / "prompts" / "parcel.wav", "Your parcel arrives on Tuesday.")
    async with SimulatedCall(holding.url) as call:
        await call.dial()
        await hear_greeting(call)
        assert holding.app.state.admission.bot(call.call_sid) is not None
        assert other.app.state.admission.bot(call.call_sid) is None
        calls = f"{other.url}/calls/{call.call_sid}"

        answer = await post(f"{calls}/say", {"text": "Your table for seven is booked."})
        assert answer == (202, {"call_sid": call.call_sid, "status": "queued"})
        said = words(transcribe(await hear_next(call)))
        assert {"table", "seven", "booked"} <= said, said

        # The prompt is the holder's (its PROMPTS_DIR), and so is a refusal's reason.
        assert (await post(f"{calls}/play", {"prompt": "parcel"}))[0] == 202
        played = words(transcribe(await hear_next(call)))
        assert {"parcel", "tuesday"} <= played, played
        status, refused = await post(f"{calls}/play", {"prompt": "missing"})
        assert status == 422 and "no prompt 'missing' in PROMPTS_DIR" in refused["detail"]
        assert call.close_code is None

    async with reading(database_url) as store:
        await record_when(store, call.call_sid)  # the hang-up is on record
    status, refused = await post(f"{calls}/say", {"text": "Still there?"})
    assert (status, refused["detail"]) == (409, f"Call {call.call_sid} has ended")
    unknown = "CA" + secrets.token_hex(16)
    status, refused = await post(f"{other.url}/calls/{unknown}/say", {"text": "Hello"})
    assert (status, refused["detail"]) == (404, f"No call {unknown} is on record")


async def test_a_call_no_live_process_holds_is_409_within_the_wait(
    make_server: MakeServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    database_url = postgres.create_database()
    one = control_server(make_server, tmp_path, database_url=database_url)
    other = control_server(make_server, tmp_path / "other", database_url=database_url)
    # The webhook rang, so the call is on record and not ended; no process runs its stream
    # (as when the process that ran it was killed).
    orphan = "CA" + secrets.token_hex(16)
    form = {"CallSid": orphan, "From": "+15550001111", "To": "+15550002222"}
    assert (await post_webhook(f"{one.url}/", form))[0] == 200
    async with reading(database_url) as store:
        await record_when(store, orphan, ready="turns", turns=0)
    for server in (one, other):
        started = time.monotonic()
        status, refused = await post(f"{server.url}/calls/{orphan}/say", {"text": "Hello"})
        assert status == 409, refused
        assert refused["detail"] == (
            f"Call {orphan} is not running in this process, and no server process "
            "answered within 2 s"
        )
        assert time.monotonic() - started >= 2.0


async def test_the_relay_listens_again_after_postgresql_drops_its_connections(
    make_server: MakeServer, postgres: PostgresServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    database_url = postgres.create_database()
    holding = control_server(make_server, tmp_path, database_url=database_url)
    other = control_server(make_server, tmp_path / "other", database_url=database_url)
    async with SimulatedCall(holding.url) as call:
        await call.dial()
        await hear_greeting(call)
        # As a PostgreSQL restart or failover does: every server's connection is cut.
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            cut = await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await connection.close()
        assert cut >= 2  # at least each server's relay connection
        marks: list[tuple[int, float]] = []  # what was heard, and when, at each try

        async def queued() -> bool:
            marks.append((len(call.heard), time.monotonic()))
            answer = await post(f"{other.url}/calls/{call.call_sid}/say", {"text": "Welcome back."})
            return answer[0] == 202

        await eventually(queued, "a say relayed once the servers listen again")
        before, asked = marks[-1]
        await call.wait_for_bot_audio(after=asked, timeout=30)
        await call.wait_for_bot_quiet(QUIET, timeout=30)
        heard = words(transcribe(call.heard[before:]))
        assert {"welcome", "back"} <= heard, heard
