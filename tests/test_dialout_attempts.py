"""A placed call is never forgotten nor placed twice, through each provider.

The attempt is on record before the provider is asked; a timeout or a dropped
connection leaves it on record as `unknown`, and the provider's callbacks (on
any replica) give it its SID; the same `Idempotency-Key` answers the same and
places nothing; a database error after the provider placed the call still
answers 201.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeServer
from tests.dialout_providers import AUTH, DIALOUTS, Dialout, http, latest
from tests.fake_rest import Fault, RecordedRequest
from tests.ops_helpers import eventually

PUBLIC = "https://bot.example.com"  # replicas behind one address share PUBLIC_URL


@pytest.fixture(params=list(DIALOUTS))
def dialout(request: pytest.FixtureRequest) -> Dialout:
    """Dial-out through each provider in turn, against the fake of its REST API."""
    return DIALOUTS[request.param](request.getfixturevalue(request.param))


def keyed(key: str) -> dict[str, str]:
    return AUTH | {"Idempotency-Key": key}


async def calls_on_record(url: str) -> list[dict[str, Any]]:
    status, _, body = await http("GET", f"{url}/calls", headers=AUTH)
    assert status == 200, body
    return body["calls"]  # type: ignore[no-any-return]


def records_in(database: Path) -> list[tuple[str, str | None, str | None]]:
    """(sid, status, idempotency_key) of every call, read with the sqlite3 module."""
    with sqlite3.connect(database) as connection:
        query = "SELECT sid, status, idempotency_key FROM calls"
        return list(connection.execute(query))


async def test_the_attempt_is_on_record_before_the_provider_is_asked(
    make_server: MakeServer, dialout: Dialout, tmp_path: Path
) -> None:
    server = dialout.server(make_server)
    seen: list[list[tuple[str, str | None, str | None]]] = []
    dialout.fake.on_success = lambda _: seen.append(records_in(tmp_path / "switchboard.db"))
    status, _, body = await dialout.dial(server, {"to": dialout.callee}, keyed("order-1"))
    assert status == 201, body
    [[(sid, state, key)]] = seen  # what the database held while the provider placed the call
    assert sid.startswith("attempt-") and (state, key) == ("placing", "order-1")
    [record] = await calls_on_record(server.url)
    assert record["call_sid"] == body["call_sid"]
    assert (record["attempt_id"], record["idempotency_key"]) == (sid, "order-1")
    assert record["status"] == dialout.first_status


@pytest.mark.parametrize(
    ("fault", "answer"), [(Fault(delay=3), 504), (Fault(drop=True), 502)], ids=["timeout", "drop"]
)
async def test_a_call_placed_without_an_answer_stays_on_record_and_its_callbacks_find_it(
    make_server: MakeServer, dialout: Dialout, fault: Fault, answer: int
) -> None:
    one = dialout.server(make_server, public_url=PUBLIC, dialout_request_timeout=1)
    other = dialout.server(make_server, public_url=PUBLIC)  # another replica, one database
    dialout.fake.queue_fault(fault)
    status, _, body = await dialout.dial(one, {"to": dialout.callee}, keyed("order-7"))
    assert status == answer, body
    assert "may have been placed" in body["detail"]
    [sent] = dialout.placed()  # the provider did place the call
    attempt_id = body["attempt_id"]
    assert body["status_url"] == f"/calls/{attempt_id}"

    [record] = await calls_on_record(one.url)
    assert (record["call_sid"], record["status"]) == (attempt_id, "unknown")
    assert (record["idempotency_key"], record["to"]) == ("order-7", dialout.callee)

    # Trying again with the key answers the same, and places nothing.
    again = await dialout.dial(one, {"to": dialout.callee}, keyed("order-7"))
    assert again[:1] + again[2:] == (status, body)
    assert len(dialout.placed()) == 1

    # The provider reports on the call, to another replica: the attempt gets its SID.
    call_sid = dialout.sid_of(sent)
    assert await dialout.report(other, sent, call_sid, "in-progress", 2) == 204
    record = await latest(one, attempt_id)
    assert (record["call_sid"], record["status"]) == (call_sid, "in-progress")
    assert (await latest(other, call_sid))["idempotency_key"] == "order-7"
    assert [r["call_sid"] for r in await calls_on_record(one.url)] == [call_sid]


async def test_the_same_key_answers_the_same_and_places_nothing(
    make_server: MakeServer, dialout: Dialout
) -> None:
    server = dialout.server(make_server)
    first = await dialout.dial(server, {"to": dialout.callee}, keyed("k-1"))
    assert first[0] == 201, first
    again = await dialout.dial(server, {"to": dialout.callee}, keyed("k-1"))
    assert (again[0], again[1]["Location"], again[2]) == (201, first[1]["Location"], first[2])
    assert len(dialout.placed()) == 1

    reused = await dialout.dial(server, {"to": dialout.callee, "record": True}, keyed("k-1"))
    assert reused[0] == 422 and "another request" in reused[2]["detail"]

    # A refusal is kept for its key too; one that says "try again later" frees the key.
    dialout.fail_next(400, 21211 if dialout.name == "twilio" else None, "Invalid To number")
    refused = await dialout.dial(server, {"to": dialout.callee}, keyed("k-2"))
    assert refused[0] == 422, refused
    assert (await dialout.dial(server, {"to": dialout.callee}, keyed("k-2")))[2] == refused[2]
    dialout.fail_next(429, 20429 if dialout.name == "twilio" else None, "Too Many Requests")
    busy = await dialout.dial(server, {"to": dialout.callee}, keyed("k-3"))
    assert busy[0] == 503, busy
    assert (await dialout.dial(server, {"to": dialout.callee}, keyed("k-3")))[0] == 201
    assert len(dialout.placed()) == 2
    assert len(await calls_on_record(server.url)) == 3  # the two placed, and the refused one


@pytest.mark.parametrize("dialout", ["twilio"], indirect=True)
async def test_concurrent_requests_with_one_key_place_one_call(
    make_server: MakeServer, dialout: Dialout, database_url: str
) -> None:
    server = dialout.server(make_server, database_url=database_url)
    dialout.fake.queue_fault(Fault(delay=1))  # the first is still being placed
    answers = await asyncio.gather(
        *(dialout.dial(server, {"to": dialout.callee}, keyed("same")) for _ in range(3))
    )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201, 409, 409], answers
    assert len(dialout.placed()) == 1
    [placed] = [body for status, _, body in answers if status == 201]
    again = await dialout.dial(server, {"to": dialout.callee}, keyed("same"))
    assert again[2] == placed


async def test_a_database_error_after_the_provider_placed_the_call_still_answers_201(
    make_server: MakeServer, dialout: Dialout, tmp_path: Path
) -> None:
    database = tmp_path / "switchboard.db"
    server = dialout.server(make_server)

    def rename(old: str, new: str) -> None:
        with sqlite3.connect(database) as connection:
            connection.execute(f"ALTER TABLE {old} RENAME TO {new}")

    # The records cannot be written before the call: nothing is placed.
    await dialout.dial(server, {"to": dialout.callee})  # the schema is in place
    rename("calls", "calls_away")
    status, headers, body = await dialout.dial(server, {"to": dialout.callee}, keyed("db-1"))
    rename("calls_away", "calls")
    assert (status, int(headers["Retry-After"])) == (503, 10), body
    assert len(dialout.placed()) == 1

    # They fail once the provider has placed it: still 201, and written once they work again.
    def break_records(_: RecordedRequest) -> None:
        rename("calls", "calls_away")
        threading.Timer(1.0, rename, ("calls_away", "calls")).start()

    dialout.fake.on_success = break_records
    status, _, body = await dialout.dial(server, {"to": dialout.callee}, keyed("db-2"))
    assert status == 201, body

    async def on_record() -> bool:
        answer, _, record = await http(
            "GET", f"{server.url}/calls/{body['call_sid']}", headers=AUTH
        )
        return answer == 200 and record["idempotency_key"] == "db-2"

    await eventually(on_record, "the placed call's record is written once the database works")
    dialout.fake.on_success = None
    assert (await dialout.dial(server, {"to": dialout.callee}, keyed("db-2")))[2] == body
    assert len(dialout.placed()) == 2
