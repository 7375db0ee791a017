"""nginx, with the configuration Compose ships, in front of two real replicas on one PostgreSQL.

Everything is real and on loopback: Debian's nginx running `deploy/compose/nginx.conf`
(tests/nginx.py), two `python server.py` processes sharing a throw-away
PostgreSQL, Twilio's signatures checked; only Twilio's REST API is the fake.
Which replica a request reached is read from the replicas' own logs.

The tests share one deployment, in order; the last one stops a replica.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from simulator import SimulatedCall, parse_twiml
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, Transcribe
from tests.conversation import QUIET
from tests.dialout_providers import CALLEE, OUR_NUMBER, status_callback
from tests.fake_twilio import FakeTwilio
from tests.nginx import Nginx
from tests.ops_helpers import eventually, readiness
from tests.postgres import PostgresServer
from tests.records_helpers import reading, record_when
from tests.server_process import ServerProcess

DIALOUT_KEY = "proxy-test-dialout-key-0123456789"
AUTH = {"Authorization": f"Bearer {DIALOUT_KEY}"}


@dataclass
class Deployment:
    nginx: Nginx
    replicas: list[ServerProcess]
    twilio: FakeTwilio
    database_url: str

    def took(self, call_sid: str) -> list[int]:
        """Which replicas started the call's pipeline (by index)."""
        return [i for i, r in enumerate(self.replicas) if _logged(r, call_sid, "Call started")]


def _logged(replica: ServerProcess, call_sid: str, message: str) -> bool:
    return any(call_sid in line and message in line for line in replica.log().splitlines())


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    workdir: Path = tmp_path_factory.mktemp("proxy")
    database_url = postgres.create_database()
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as twilio:
        settings = {
            "DATABASE_URL": database_url,
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": twilio.base_url,
            "TWILIO_PHONE_NUMBER": OUR_NUMBER,
            "DIALOUT_API_KEY": DIALOUT_KEY,
            "DRAIN_TIMEOUT": "300",
        }
        replicas = [ServerProcess(workdir, **settings) for _ in range(2)]
        nginx = Nginx([r.port for r in replicas])
        for replica in replicas:  # dial-out tells Twilio the proxy's address, never a Host header
            replica.settings["PUBLIC_URL"] = nginx.url
        try:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda r: r.start(), replicas))
            with nginx:
                yield Deployment(nginx, replicas, twilio, database_url)
        finally:
            for replica in replicas:
                replica.stop()


async def _greeted(url: str) -> SimulatedCall:
    """A call through the proxy: webhook, then its stream; returns once the bot greets."""
    call = SimulatedCall(url, auth_token=TEST_AUTH_TOKEN, account_sid=TEST_ACCOUNT_SID)
    await call.dial()
    await call.wait_for_bot_audio(timeout=60)
    return call


async def test_calls_through_nginx_reach_either_replica_and_are_recorded_once(
    deployment: Deployment,
) -> None:
    first = await _greeted(deployment.nginx.url)
    second = await _greeted(deployment.nginx.url)  # nginx: the replica with fewer calls
    try:
        assert first.stream_url == f"wss://127.0.0.1:{deployment.nginx.port}/ws"
        assert deployment.took(first.call_sid) != deployment.took(second.call_sid)
        assert sorted(deployment.took(first.call_sid) + deployment.took(second.call_sid)) == [0, 1]
    finally:
        await first.hang_up()
        await second.hang_up()
    async with reading(deployment.database_url) as store:
        for call in (first, second):
            record = await record_when(store, call.call_sid)
            assert (record.end_reason, record.status) == ("caller_hung_up", "completed")
            assert record.answered_at is not None and record.direction == "inbound"
    async with httpx.AsyncClient() as client:  # the public proxy never shows the metrics
        assert (await client.get(f"{deployment.nginx.url}/metrics")).status_code == 404


async def _status(deployment: Deployment, form: dict[str, str]) -> int:
    url = f"{deployment.nginx.url}/status"
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, form)
    async with httpx.AsyncClient() as client:  # a connection of its own, as Twilio's
        response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    return response.status_code


async def test_a_dialout_placed_on_one_replica_gets_its_status_on_the_other(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient() as client:
        placed = await client.post(
            f"{deployment.nginx.url}/dialout", json={"to": CALLEE}, headers=AUTH
        )
    assert placed.status_code == 201, placed.text
    sid = placed.json()["call_sid"]
    [placer] = [i for i, r in enumerate(deployment.replicas) if _logged(r, sid, "Dial-out placed")]
    other = deployment.replicas[1 - placer]
    sent = deployment.twilio.calls_created()[-1]
    assert (sent.value("StatusCallback") or "").startswith(
        f"{deployment.nginx.url}/status?attempt="
    )

    # Twilio's progress reports, each on a connection of its own, as Twilio sends them.
    for sequence, status in enumerate(("initiated", "ringing", "in-progress")):
        assert await _status(deployment, status_callback(sid, status, sequence)) == 204
    stream_url, parameters = parse_twiml(sent.value("Twiml") or "")
    callee = SimulatedCall(
        deployment.nginx.url,
        auth_token=TEST_AUTH_TOKEN,
        account_sid=TEST_ACCOUNT_SID,
        call_sid=sid,
        from_number=OUR_NUMBER,
        to_number=CALLEE,
    )
    await callee.connect_stream(stream_url, parameters)
    await callee.wait_for_bot_audio(timeout=60)  # the bot greets after its wait
    await callee.hang_up()
    completed = status_callback(sid, "completed", 3, CallDuration="7")
    assert await _status(deployment, completed) == 204

    assert _logged(other, sid, "Call status: "), "no status callback reached the other replica"
    assert not any(_logged(r, sid, "did not place") for r in deployment.replicas)
    for replica in deployment.replicas:  # either answers from the shared records
        async with httpx.AsyncClient() as client:
            latest = (await client.get(f"{replica.url}/calls/{sid}", headers=AUTH)).json()
        assert (latest["status"], latest["duration"]) == ("completed", 7)


async def test_a_say_sent_to_the_replica_without_the_call_is_heard_in_it(
    deployment: Deployment, transcribe: Transcribe
) -> None:
    call = await _greeted(deployment.nginx.url)
    try:
        await call.wait_for_bot_quiet(QUIET, timeout=60)
        [holder] = deployment.took(call.call_sid)
        other = deployment.replicas[1 - holder]
        before, asked = len(call.heard), time.monotonic()
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{other.url}/calls/{call.call_sid}/say",
                json={"text": "Your table for seven is booked."},
                headers=AUTH,
            )
        assert answer.status_code == 202, answer.text
        await call.wait_for_bot_audio(after=asked, timeout=60)
        await call.wait_for_bot_quiet(QUIET, timeout=60)
        said = transcribe(call.heard[before:]).lower()
        assert "table" in said and "booked" in said, said
        assert _logged(deployment.replicas[holder], call.call_sid, "say from another process")
    finally:
        await call.hang_up()


async def test_sigterm_to_one_replica_sends_new_calls_to_the_other_and_loses_nothing(
    deployment: Deployment,
) -> None:
    # Three live calls: nginx spreads them 2 and 1. The replica with one is stopped,
    # so nginx would send it the next call first: it must pass it on.
    calls = [await _greeted(deployment.nginx.url) for _ in range(3)]
    placed: list[SimulatedCall] = []
    try:
        on = [deployment.took(c.call_sid) for c in calls]
        counts = [on.count([0]), on.count([1])]
        assert sorted(counts) == [1, 2], on
        stopped = counts.index(1)
        staying = deployment.replicas[1 - stopped]
        draining = deployment.replicas[stopped]
        [live] = [c for c, x in zip(calls, on, strict=True) if x == [stopped]]

        draining.signal(signal.SIGTERM)
        await eventually(lambda: _not_ready(draining.url), "the stopped replica drains")
        for _ in range(3):
            call = await _greeted(deployment.nginx.url)
            placed.append(call)
            assert deployment.took(call.call_sid) == [1 - stopped]
        assert "passed back to the proxy (503)" in draining.log()
        assert live.close_code is None, "the live call was cut"
    finally:
        for call in (*calls, *placed):
            await call.hang_up()
    assert await asyncio.to_thread(draining.wait, 60) == 0
    assert staying.log().count("Call started") >= 4

    async with reading(deployment.database_url) as store:
        for call in (*calls, *placed):
            record = await record_when(store, call.call_sid)
            assert (record.end_reason, record.status) == ("caller_hung_up", "completed"), record
        page = await store.list_calls(status="busy")
    assert page.total == 0  # nobody heard busy


async def _not_ready(url: str) -> bool:
    status, body = await readiness(url)
    return status == 503 and bool(body.get("draining"))
