"""Handshakes on /ws are bounded: in number (MAX_HANDSHAKING) and in time (START_TIMEOUT_SECS).

Idle sockets that never send `start` would otherwise pile up without limit.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from calls.stream import START_TIMEOUT_SECS
from simulator import SimulatedCall
from tests.conftest import MakeServer
from tests.ops_helpers import scrape, value

WS_UNSUPPORTED_DATA = 1003
WS_TRY_AGAIN_LATER = 1013


async def closed_by_server(ws: ClientConnection, within: float) -> tuple[int | None, str]:
    """Wait for the server to close `ws`; its close code and reason."""
    with contextlib.suppress(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), within)
    return ws.close_code, ws.close_reason or ""


async def test_idle_sockets_are_bounded_in_number_and_in_time(make_server: MakeServer) -> None:
    server = make_server(max_handshaking=3)
    ws_url = server.url.replace("http://", "ws://") + "/ws"
    idle = [await connect(ws_url) for _ in range(3)]

    async with connect(ws_url) as extra:  # the upgrade succeeds; the socket is closed at once
        assert await closed_by_server(extra, within=2) == (
            WS_TRY_AGAIN_LATER,
            "too many streams handshaking",
        )
    assert all(ws.close_code is None for ws in idle)

    # One idle socket goes away: a real call gets its slot while the others still hang.
    await idle.pop().close()
    async with SimulatedCall(server.url) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=30)

        # The idle ones are closed by the server once the wait for `start` is over.
        for ws in idle:
            code, reason = await closed_by_server(ws, within=START_TIMEOUT_SECS + 10)
            assert (code, reason) == (WS_UNSUPPORTED_DATA, "no start message within 5 s")
        assert call.close_code is None  # the call goes on

    samples = await scrape(server.url)
    refusals = "switchboard_stream_refusals_total"
    assert value(samples, refusals, reason="too_many_handshakes") == 1
    assert value(samples, refusals, reason="handshake") == 3  # one left, two timed out
