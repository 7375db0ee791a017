"""`GET /metrics`, parsed with prometheus-client, counts the calls just made."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from simulator import CallRejected, SimulatedCall
from tests.conftest import TEST_AUTH_TOKEN, MakeServer
from tests.conversation import hear_greeting, hear_reply, speak
from tests.dialout_providers import AUTH, twilio_settings
from tests.fake_twilio import FakeTwilio
from tests.ops_helpers import Samples, eventually, scrape, value

WS_TRY_AGAIN_LATER = 1013


async def test_metrics_count_the_calls_just_made(make_server: MakeServer) -> None:
    server = make_server(max_calls=1, twilio_auth_token=TEST_AUTH_TOKEN)
    # No pause inside (a comma would make one of 0.3 s) that VAD could take for the end of a
    # turn: the caller's one utterance gets one reply, however late its audio arrives.
    speech = await speak("I would like a table for two tonight.")
    before = await scrape(server.url)
    assert value(before, "switchboard_active_calls") == 0
    assert value(before, "switchboard_calls_total", direction="inbound", outcome="rejected") == 0

    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
        await call.dial()
        await hear_greeting(call, timeout=30)
        await hear_reply(call, speech, timeout=30)
        during = await scrape(server.url)
        with pytest.raises(CallRejected):
            await SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN).dial()
    async with httpx.AsyncClient() as client:
        forged = await client.post(
            f"{server.url}/", data={"CallSid": "CA" + "0" * 32}, headers={"X-Twilio-Signature": "x"}
        )
    assert forged.status_code == 403
    ws_url = server.url.replace("http", "ws") + "/ws"
    async with connect(ws_url, additional_headers={"X-Twilio-Signature": "forged"}) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()

    async def call_counted() -> bool:
        samples = await scrape(server.url)
        return (
            value(samples, "switchboard_calls_total", direction="inbound", outcome="caller_hung_up")
            == 1
        )

    await eventually(call_counted, "the call that hung up is counted")
    after = await scrape(server.url)

    assert value(during, "switchboard_active_calls") == 1
    assert value(after, "switchboard_active_calls") == 0
    assert value(after, "switchboard_calls_total", direction="inbound", outcome="rejected") == 1
    assert value(after, "switchboard_webhook_requests_total", outcome="connected") == 1
    assert value(after, "switchboard_webhook_requests_total", outcome="rejected") == 1
    assert value(after, "switchboard_webhook_requests_total", outcome="invalid_signature") == 1
    assert value(after, "switchboard_signature_failures_total", endpoint="webhook") == 1
    assert value(after, "switchboard_signature_failures_total", endpoint="media_stream") == 1
    assert value(after, "switchboard_call_duration_seconds_count", direction="inbound") == 1
    assert value(after, "switchboard_call_duration_seconds_sum", direction="inbound") > 0
    # The greeting's first audio, and the reply to the one thing the caller said.
    assert value(after, "switchboard_first_bot_audio_seconds_count", direction="inbound") == 1
    assert value(after, "switchboard_response_latency_seconds_count") == 1
    assert 0 < value(after, "switchboard_response_latency_seconds_sum") < 30
    assert not _labelled_with_a_call_sid(after)


def _labelled_with_a_call_sid(samples: Samples) -> list[tuple[str, str]]:
    return [
        (key, label)
        for _, labels in samples
        for key, label in labels
        if "sid" in key.lower() or label.startswith(("CA", "MZ"))
    ]


async def test_dialout_results_are_counted_by_twilio_error_code(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = make_server(**twilio_settings(twilio.base_url))
    bystander = make_server()
    twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    twilio.fail_next(400, 21215, "Geo permission configuration is not permitting call")
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as client:
        answers = [
            (await client.post("/dialout", json={"to": "+15557654321"})).status_code
            for _ in range(4)
        ]
    assert [a >= 400 for a in answers] == [True, True, True, False]
    assert answers[3] == 201
    total = "switchboard_dialout_results_total"
    samples = await scrape(server.url)
    assert value(samples, total, provider="twilio", outcome="failed", error_code="21211") == 2
    assert value(samples, total, provider="twilio", outcome="failed", error_code="21215") == 1
    assert value(samples, total, provider="twilio", outcome="placed", error_code="none") == 1
    # Each app has its own registry: the other server counted nothing.
    assert not [name for name, _ in await scrape(bystander.url) if name == total]


async def test_values_from_the_wire_do_not_become_labels(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    # A stream may say anything in its parameters (signatures off: nothing is signed here).
    server = make_server(max_calls=1)
    stream_url = f"wss://{urlsplit(server.url).netloc}/ws"
    forged = "forged-direction-0001"
    async with SimulatedCall(server.url) as holder:
        await holder.connect_stream(stream_url, {"direction": forged})
        await holder.wait_for_bot_audio(timeout=30)
        async with SimulatedCall(server.url) as refused:
            await refused.connect_stream(stream_url, {"direction": forged + "x"})
            await refused.wait_closed(timeout=10)
        assert refused.close_code == WS_TRY_AGAIN_LATER

    async def call_counted() -> bool:
        samples = await scrape(server.url)
        return (
            value(samples, "switchboard_calls_total", direction="unknown", outcome="caller_hung_up")
            == 1
        )

    await eventually(call_counted, "the forged call is counted as direction unknown")
    samples = await scrape(server.url)
    assert value(samples, "switchboard_calls_total", direction="unknown", outcome="rejected") == 1
    assert value(samples, "switchboard_first_bot_audio_seconds_count", direction="unknown") == 1

    dialer = make_server(**twilio_settings(twilio.base_url))
    twilio.fail_next(400, 31999, "Some error this server has never heard of")
    async with httpx.AsyncClient(base_url=dialer.url, headers=AUTH) as client:
        assert (await client.post("/dialout", json={"to": "+15557654321"})).status_code == 502
    total = "switchboard_dialout_results_total"
    dialled = await scrape(dialer.url)
    assert value(dialled, total, provider="twilio", outcome="failed", error_code="other") == 1

    labels = {label for _, pairs in [*samples, *dialled] for _, label in pairs}
    assert not [label for label in labels if "forged" in label or "31999" in label]
