"""Admission control: at MAX_CALLS new calls hear busy, and the media stream re-checks."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import Depends, FastAPI

from admission import RETRY_AFTER_SECS, Admission, require_capacity
from simulate import CallRejected, SimulatedCall, synthesize
from tests.conftest import TEST_AUTH_TOKEN, MakeServer
from tests.ops_helpers import QUIET, eventually, readiness
from tests.server_thread import ServerThread

WS_TRY_AGAIN_LATER = 1013


async def test_at_max_calls_the_webhook_rejects_busy_and_the_stream_refuses(
    make_server: MakeServer,
) -> None:
    server = make_server(max_calls=1, twilio_auth_token=TEST_AUTH_TOKEN)
    speech = await asyncio.to_thread(synthesize, "What time do you open tomorrow?")

    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as first:
        await first.dial()
        await first.wait_for_bot_audio(timeout=30)
        status, body = await readiness(server.url)
        assert status == 503
        assert body["reasons"] == {"admission": "at capacity (1 of 1 calls)"}

        second = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN)
        with pytest.raises(CallRejected) as rejected:
            await second.dial()
        assert rejected.value.reason == "busy"

        # A stream whose webhook another replica answered is checked again here.
        assert first.stream_url is not None
        async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as third:
            await third.connect_stream(first.stream_url, first.parameters)
            await third.wait_closed(timeout=10)
        assert third.close_code == WS_TRY_AGAIN_LATER
        assert third.close_reason == "busy: at capacity"
        assert not third.first_audio_at  # the bot never spoke to it

        # The call that holds the slot is unaffected.
        await first.wait_for_bot_quiet(QUIET, timeout=30)
        said = await first.say(speech)
        await first.wait_for_bot_audio(after=said, timeout=30)

    async def ready() -> bool:
        return (await readiness(server.url))[0] == 200

    await eventually(ready, "the slot is free again once the caller hung up")
    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as fourth:
        await fourth.dial()
        await fourth.wait_for_bot_audio(timeout=30)


def test_require_capacity_answers_503_with_retry_after() -> None:
    app = FastAPI()
    admission = Admission(max_calls=1)
    app.state.admission = admission

    @app.post("/dialout", dependencies=[Depends(require_capacity)])
    async def dialout() -> dict[str, str]:
        return {"status": "queued"}

    with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/dialout").status_code == 200

        assert admission.try_admit()
        busy = client.post("/dialout")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == str(RETRY_AFTER_SECS)
        assert busy.json() == {"detail": "this server takes no new calls now: at capacity"}

        admission.release()
        assert client.post("/dialout").status_code == 200
        admission.start_draining()
        draining = client.post("/dialout")
        assert draining.status_code == 503
        assert draining.json()["detail"].endswith("draining")
