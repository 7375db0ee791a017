"""`WORKERS=2`: one port served by two real worker processes under the supervisor.

The kernel spreads connections over the workers (SO_REUSEPORT), so a test
cannot choose the worker a call lands on: it places calls until each worker
holds one, and asks `/readyz`, which lists every worker, where they landed.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import CallEnded, CallRejected, SimulatedCall
from tests.ops_helpers import eventually, readiness, scrape, value
from tests.server_process import ServerProcess

WS_TRY_AGAIN_LATER = 1013
# Each worker holds one call: the machine is full with two.
TWO_WORKERS = {"WORKERS": "2", "MAX_CALLS": "1", "DRAIN_TIMEOUT": "300"}
# Placing a call lands on either worker at random: enough tries to fill both.
TRIES = 12

StartServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[StartServer]:
    started: list[ServerProcess] = []

    async def start(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path, **(TWO_WORKERS | env))
        started.append(server)
        await asyncio.to_thread(server.start)  # returns once one worker answers

        async def both_up() -> bool:
            return len(await _workers(server.url)) == 2

        await eventually(both_up, "both workers serve", timeout=120)
        return server

    yield start
    for server in started:
        server.stop()


async def _taken(call: SimulatedCall) -> bool:
    """Dial; whether a worker took the stream (the bot greets) or refused it (1013)."""
    await call.dial()
    try:
        await call.wait_for_bot_audio(timeout=60)
    except CallEnded:
        assert (call.close_code, call.close_reason) == (WS_TRY_AGAIN_LATER, "busy: at capacity")
        return False
    return True


async def _workers(url: str) -> list[dict[str, Any]]:
    workers: list[dict[str, Any]] = (await readiness(url))[1]["workers"]
    return workers


async def _fill_every_worker(url: str) -> list[SimulatedCall]:
    """Place calls until each worker holds one; the calls that were taken."""
    taken: list[SimulatedCall] = []
    for _ in range(TRIES):
        call = SimulatedCall(url)
        if await _taken(call):
            taken.append(call)
            if len(taken) == 1:
                status, body = await readiness(url)
                # One worker is full, the other has room: the machine takes calls.
                assert status == 200, body
                assert (body["calls"], body["max_calls"]) == (1, 2)
        if len(taken) == 2:
            return taken
    raise AssertionError(f"{TRIES} calls never reached both workers: {await _workers(url)}")


async def test_two_workers_share_the_port_the_metrics_readiness_and_the_drain(
    supervisor: StartServer,
) -> None:
    server = await supervisor()
    workers = await _workers(server.url)
    assert [(w["index"], w["max_calls"]) for w in workers] == [(0, 1), (1, 1)]
    assert len({w["pid"] for w in workers}) == 2

    calls = await _fill_every_worker(server.url)
    try:
        assert [w["calls"] for w in await _workers(server.url)] == [1, 1]
        status, body = await readiness(server.url)
        assert status == 503
        assert body["reasons"] == {"admission": "at capacity (every worker)"}
        with pytest.raises(CallRejected):
            await SimulatedCall(server.url).dial()
        samples = await scrape(server.url)  # whichever worker answers, it counts both
        assert value(samples, "switchboard_active_calls") == 2
        assert value(samples, "switchboard_capacity_calls") == 2

        server.signal(signal.SIGTERM)
        await eventually(lambda: _all_draining(server.url), "every worker drains")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/healthz")).status_code == 200
        await asyncio.sleep(1)
        assert all(call.close_code is None for call in calls), "a live call was cut"
    finally:
        for call in calls:
            await call.hang_up()
    assert await asyncio.to_thread(server.wait, 60) == 0
    log = server.log()
    assert "Every worker has drained" in log
    assert log.count("Drained: shutting down") == 2


async def _all_draining(url: str) -> bool:
    status, body = await readiness(url)
    return status == 503 and all(w["draining"] for w in body["workers"])


async def test_a_crashed_worker_is_restarted_and_a_second_signal_stops_all(
    supervisor: StartServer,
) -> None:
    server = await supervisor(MAX_CALLS="5")
    before = {w["index"]: w["pid"] for w in await _workers(server.url)}
    crashed = before[0]
    os.kill(crashed, signal.SIGKILL)

    async def restarted() -> bool:
        try:
            now = {w["index"]: w["pid"] for w in await _workers(server.url)}
        except httpx.TransportError:  # a request the killed worker had taken
            return False
        return now.get(1) == before[1] and now.get(0) not in (None, crashed)

    await eventually(restarted, "worker 0 runs again", timeout=120)
    assert "Worker 0 exited (-9): restarting" in server.log()

    async with SimulatedCall(server.url) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=60)
        server.signal(signal.SIGTERM)
        await eventually(lambda: _all_draining(server.url), "every worker drains")
        server.signal(signal.SIGINT)
        assert await asyncio.to_thread(server.wait, 60) == 128 + signal.SIGINT
        await call.wait_closed(timeout=10)
    assert call.closed_by == "server"
