"""Twilio regions and edges: every REST request (dial-out, recording, hang-up) goes to
`api.{edge}.{region}.twilio.com`, and settings that cannot name one host stop the server."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from simulator import SimulatedCall
from tests.conftest import OWN_URL, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, offline_settings
from tests.dialout_providers import AUTH, CALLEE, OUR_NUMBER
from tests.fake_twilio import FakeTwilio
from tests.server_process import ServerProcess
from tests.twilio_region import RegionalHost

REGIONAL_HOST = "api.dublin.ie1.twilio.com"
ACCOUNT = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}"


async def wait_for(condition: Any, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_every_rest_request_goes_to_the_regional_host(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    with RegionalHost(REGIONAL_HOST, twilio.base_url, tmp_path) as front:
        server = ServerProcess(
            tmp_path,
            TWILIO_REGION="ie1",
            TWILIO_EDGE="dublin",
            TWILIO_ACCOUNT_SID=TEST_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=TEST_AUTH_TOKEN,
            TWILIO_PHONE_NUMBER=OUR_NUMBER,
            DIALOUT_API_KEY=AUTH["Authorization"].removeprefix("Bearer "),
            PUBLIC_URL=OWN_URL,
            RECORDING="twilio",
            DRAIN_TIMEOUT="0",
            DATABASE_URL=f"sqlite:///{tmp_path / 'switchboard.db'}",
            **front.server_environment(tmp_path),
        ).start()
        call = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{server.url}/dialout", json={"to": CALLEE}, headers=AUTH) as r,
            ):
                assert r.status == 201, await r.text()
            await call.dial()  # Twilio records it when its stream starts
            await call.wait_for_bot_audio(timeout=30)
            await wait_for(lambda: twilio.recordings.of(call.call_sid))
            # A deploy ends the call after a goodbye: hung up through the REST API.
            server.signal(signal.SIGTERM)
            await call.wait_closed(timeout=60)
            assert server.wait(within=60) == 0
        finally:
            server.stop()
            await call.hang_up()
    assert {(sni, host) for sni, host, _, _ in front.seen} == {(REGIONAL_HOST, REGIONAL_HOST)}
    requests = [(method, path) for _, _, method, path in front.seen]
    assert ("POST", f"{ACCOUNT}/Calls.json") in requests
    assert ("POST", f"{ACCOUNT}/Calls/{call.call_sid}/Recordings.json") in requests
    assert [h.path for h in twilio.hangups()] == [f"{ACCOUNT}/Calls/{call.call_sid}.json"]
    assert ("POST", f"{ACCOUNT}/Calls/{call.call_sid}.json") in requests


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"twilio_region": "ie1"}, "set both TWILIO_REGION and TWILIO_EDGE"),
        ({"twilio_edge": "dublin"}, "set both TWILIO_REGION and TWILIO_EDGE"),
        (
            {
                "twilio_region": "ie1",
                "twilio_edge": "dublin",
                "twilio_api_base_url": "http://127.0.0.1:9999",
            },
            "or TWILIO_API_BASE_URL: not both",
        ),
        ({"twilio_region": "Ireland", "twilio_edge": "dublin"}, "twilio_region"),
    ],
)
def test_a_region_without_its_edge_or_beside_a_base_url_stops_the_server(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        offline_settings(**settings)


def test_a_region_and_edge_name_the_host() -> None:
    from telephony.twilio_rest import api_base

    assert api_base(offline_settings(twilio_region="ie1", twilio_edge="dublin")) == (
        f"https://{REGIONAL_HOST}"
    )
    assert api_base(offline_settings()) == "https://api.twilio.com"
