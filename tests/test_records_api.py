"""GET /calls and GET /calls/{sid} behind the bearer key, and the CSV/JSON export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from records.models import TurnRole
from records.store import CallStore
from telephony.call_info import CallInfo
from tests.conftest import OWN_URL, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer
from tests.records_helpers import reading
from tests.server_thread import ServerThread

API_KEY = "records-api-key-0123456789abcdef"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPT = [
    (TurnRole.ASSISTANT, "Hello, how may I help?"),
    (TurnRole.USER, "Opening hours, please."),
    (TurnRole.DTMF, "1#"),
]


def sid(i: int) -> str:
    return f"CA{i:032x}"


async def seed(store: CallStore, count: int = 6) -> None:
    """`count` calls an hour apart: odd ones outbound, the last two still live, one transcript."""
    for i in range(count):
        call = CallInfo(
            provider="twilio",
            call_sid=sid(i),
            stream_sid="MZ" + "0" * 32,
            from_number=f"+1555000{i:04d}",
            to_number="+15550002222",
            direction="outbound" if i % 2 else "inbound",
            parameters={"n": str(i)},
        )
        start = T0 + timedelta(hours=i)
        await store.start_call(call, at=start)
        if i == 0:
            await store.add_turn(
                call.call_sid, 1, TurnRole.ASSISTANT, "Hello, how may I help?", start
            )
            await store.add_turn(call.call_sid, 2, TurnRole.USER, "Opening hours, please.", start)
            await store.add_turn(call.call_sid, 3, TurnRole.DTMF, "1#", start)
        if i < count - 2:
            await store.end_call(call.call_sid, "caller_hung_up", at=start + timedelta(minutes=1))


async def get(server: ServerThread, path: str, key: str | None = API_KEY, **params: Any):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}{path}", params=params, headers=headers) as response,
    ):
        return response.status, await response.json(), response.headers


@pytest.fixture
def api_server(make_server: MakeServer, database_url: str) -> ServerThread:
    return make_server(
        database_url=database_url,
        dialout_api_key=API_KEY,
        public_url=OWN_URL,
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
    )


async def test_calls_need_the_bearer_key(api_server: ServerThread) -> None:
    for key in (None, "wrong-key-0123456789abcdef", API_KEY[:-1], API_KEY + "x"):
        for path in ("/calls", f"/calls/{sid(0)}"):
            status, body, headers = await get(api_server, path, key=key)
            assert status == 401, (key, path)
            assert headers["WWW-Authenticate"] == "Bearer"
            assert "calls" not in body
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{api_server.url}/calls", headers={"Authorization": f"Basic {API_KEY}"}
        ) as response,
    ):
        assert response.status == 401


async def test_a_moment_or_offset_out_of_shape_is_refused(api_server: ServerThread) -> None:
    # Read as Unix times, these would have meant moments in 1970.
    for since in ("2026", "-7439", "yesterday"):
        status, body, _ = await get(api_server, "/calls", since=since)
        assert status == 422, (since, body)
        assert "ISO 8601" in str(body["detail"])
    # Past a 64-bit integer, the database would fail (500).
    status, body, _ = await get(api_server, "/calls", offset=2**70)
    assert status == 422, body


async def test_calls_are_refused_when_no_key_is_configured(make_server: MakeServer) -> None:
    server = make_server()
    status, body, _ = await get(server, "/calls", key="anything-at-all-0123456789")
    assert status == 401
    assert "DIALOUT_API_KEY" in body["detail"]


async def test_calls_filter_and_page(api_server: ServerThread, database_url: str) -> None:
    async with reading(database_url) as store:
        await seed(store)

    status, page, _ = await get(api_server, "/calls")
    assert status == 200
    assert page["total"] == 6 and page["next_offset"] is None
    assert [c["call_sid"] for c in page["calls"]] == [sid(i) for i in reversed(range(6))]
    first = page["calls"][-1]
    assert first["from"] == "+15550000000" and first["parameters"] == {"n": "0"}
    assert first["end_reason"] == "caller_hung_up" and first["status"] == "completed"
    assert datetime.fromisoformat(first["started_at"]) == T0
    assert "turns" not in first

    _, outbound, _ = await get(api_server, "/calls", direction="outbound")
    assert [c["call_sid"] for c in outbound["calls"]] == [sid(5), sid(3), sid(1)]
    _, live, _ = await get(api_server, "/calls", status="in-progress")
    assert [c["call_sid"] for c in live["calls"]] == [sid(5), sid(4)]
    _, ended, _ = await get(api_server, "/calls", end_reason="caller_hung_up", direction="inbound")
    assert [c["call_sid"] for c in ended["calls"]] == [sid(2), sid(0)]
    since, until = (T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=3)).isoformat()
    _, window, _ = await get(api_server, "/calls", since=since, until=until)
    assert [c["call_sid"] for c in window["calls"]] == [sid(2), sid(1)]
    # A date without a zone is UTC.
    _, naive, _ = await get(api_server, "/calls", since="2026-03-01T15:00:00")
    assert [c["call_sid"] for c in naive["calls"]] == [sid(5), sid(4), sid(3)]

    _, page1, _ = await get(api_server, "/calls", limit=4)
    assert (len(page1["calls"]), page1["next_offset"]) == (4, 4)
    _, page2, _ = await get(api_server, "/calls", limit=4, offset=page1["next_offset"])
    assert [c["call_sid"] for c in page2["calls"]] == [sid(1), sid(0)]
    assert (page2["total"], page2["next_offset"]) == (6, None)

    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"direction": "sideways"}):
        status, _, _ = await get(api_server, "/calls", **bad)
        assert status == 422, bad


async def test_one_call_comes_with_its_transcript(
    api_server: ServerThread, database_url: str
) -> None:
    async with reading(database_url) as store:
        await seed(store)

    status, call, _ = await get(api_server, f"/calls/{sid(0)}")
    assert status == 200
    assert call["call_sid"] == sid(0) and call["direction"] == "inbound"
    # Everything `POST /dialout`'s status link promised is here too.
    assert {"call_sid", "status", "to", "from", "answered_by", "duration"} <= call.keys()
    assert (call["from"], call["to"]) == ("+15550000000", "+15550002222")
    assert [(t["seq"], t["role"], t["text"]) for t in call["turns"]] == [
        (1, "assistant", "Hello, how may I help?"),
        (2, "user", "Opening hours, please."),
        (3, "dtmf", "1#"),
    ]
    status, body, _ = await get(api_server, f"/calls/{sid(99)}")
    assert status == 404 and sid(99) in body["detail"]


async def export(database_url: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "records.export",
        "--database-url",
        database_url,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_export_writes_csv_and_json(database_url: str, tmp_path: Path) -> None:
    async with reading(database_url) as store:
        await store.migrate()
        await seed(store)

    rows = list(csv.DictReader(io.StringIO(await export(database_url, "--format", "csv"))))
    assert [row["call_sid"] for row in rows] == [sid(i) for i in reversed(range(6))]
    first = rows[-1]
    assert (first["direction"], first["end_reason"], first["from"]) == (
        "inbound",
        "caller_hung_up",
        "+15550000000",
    )
    assert json.loads(first["parameters"]) == {"n": "0"}
    assert first["transcript"].splitlines()[1].endswith("user: Opening hours, please.")
    assert rows[0]["ended_at"] == "" and rows[0]["transcript"] == ""

    target = tmp_path / "calls.json"
    await export(database_url, "--format", "json", "--direction", "outbound", "-o", str(target))
    calls = json.loads(target.read_text())
    assert [c["call_sid"] for c in calls] == [sid(5), sid(3), sid(1)]
    assert all(c["turns"] == [] for c in calls)
    everything = json.loads(await export(database_url, "--format", "json"))
    assert [t["text"] for t in everything[-1]["turns"]][-1] == "1#"
    nothing = json.loads(await export(database_url, "--format", "json", "--since", "2030-01-01"))
    assert nothing == []
