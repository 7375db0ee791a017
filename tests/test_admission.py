"""Admission control: at MAX_CALLS new calls hear busy, and the media stream re-checks."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import settings as settings_module
from ops.admission import RETRY_AFTER_SECS
from simulator import CallRejected, SimulatedCall, synthesize
from tests.conftest import (
    OWN_URL,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    MakeServer,
    offline_settings,
)
from tests.fake_twilio import FakeTwilio
from tests.ops_helpers import QUIET, eventually, readiness

WS_TRY_AGAIN_LATER = 1013
DIALOUT_KEY = "dialout-test-key-0123456789abcdef"


async def test_at_max_calls_the_webhook_rejects_busy_and_the_stream_refuses(
    make_server: MakeServer,
) -> None:
    server = make_server(max_calls=1, twilio_auth_token=TEST_AUTH_TOKEN)
    speech = await asyncio.to_thread(synthesize, "What time do you open tomorrow?")

    # Its webhook rings while a slot is free; its stream opens once none is left.
    third = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN)
    stream_url, parameters = await third.ring()
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

        # A stream is checked again when it opens (its webhook may have been another replica's).
        async with third:
            await third.connect_stream(stream_url, parameters)
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


async def test_dialout_at_capacity_answers_503_with_retry_after(make_server: MakeServer) -> None:
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as twilio:
        server = make_server(
            max_calls=1,
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=TEST_AUTH_TOKEN,
            twilio_api_base_url=twilio.base_url,
            twilio_phone_number="+15550001111",
            dialout_api_key=DIALOUT_KEY,
            public_url=OWN_URL,
        )
        async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
            await call.dial()
            await call.wait_for_bot_audio(timeout=30)
            async with httpx.AsyncClient(base_url=server.url) as client:
                unauthorized = await client.post("/dialout", json={"to": "+15557654321"})
                busy = await client.post(
                    "/dialout",
                    json={"to": "+15557654321"},
                    headers={"Authorization": f"Bearer {DIALOUT_KEY}"},
                )
        assert unauthorized.status_code == 401  # the key is checked first
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == str(RETRY_AFTER_SECS)
        assert busy.json() == {"detail": "this server takes no new calls now: at capacity"}
        assert twilio.calls_created() == []


def test_unset_max_calls_takes_the_measured_capacity_of_the_services_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings_module, "available_cpus", lambda: 3)
    offline_capacity = 3  # one call per CPU with Whisper or Piper in the process
    offline = offline_settings(workers=1)
    cloud = offline_settings(
        deepgram_api_key="dg-key", openai_api_key="sk-key", cartesia_api_key="ct-key"
    )
    whisper_only = offline_settings(openai_api_key="sk-key", cartesia_api_key="ct-key", workers=1)
    assert offline.max_calls is None
    assert offline.call_capacity == offline_capacity
    assert cloud.call_capacity == 26  # half of what one core held in the benchmark
    assert whisper_only.call_capacity == offline_capacity
    assert offline_settings(max_calls="", workers="1").call_capacity == offline_capacity
    assert offline_settings(max_calls="7", deepgram_api_key="dg-key").call_capacity == 7
    # One worker per CPU by default: the machine's offline calls are shared among them.
    assert offline_settings().worker_count == 3
    assert offline_settings().call_capacity == 1
    assert offline_settings(workers=2).call_capacity == 1
    assert (
        cloud.call_capacity
        == offline_settings(
            deepgram_api_key="dg-key", openai_api_key="sk-key", cartesia_api_key="ct-key", workers=1
        ).call_capacity
    )  # each worker has a core of its own


async def test_readiness_reports_the_capacity_in_force(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_module, "available_cpus", lambda: 2)
    server = make_server(max_calls=None, workers=1)
    status, body = await readiness(server.url)
    assert status == 200
    assert body["max_calls"] == 2
