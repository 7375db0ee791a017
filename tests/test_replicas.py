"""Several replicas: the webhook may hit one server and the media stream another.

Everything a call needs rides in the stream's `<Parameter>`s, so a replica that
never saw the webhook runs the call; and it checks admission itself. Two
servers with separate state stand in for two processes behind one address.
"""

from __future__ import annotations

from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from simulator import SimulatedCall, parse_twiml
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, Transcribe
from tests.conversation import QUIET, hear_reply, speak
from tests.ops_helpers import scrape, value
from tests.server_thread import ServerThread

CALLER = "+15553334444"
CALLED = "+15556667777"
WS_TRY_AGAIN_LATER = 1013


async def _webhook(server: ServerThread, call: SimulatedCall) -> tuple[str, dict[str, str]]:
    """POST the call's webhook to `server`, signed as Twilio would; the TwiML's stream."""
    url = f"{server.url}/?tenant=acme"
    params = call.webhook_params()
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, params)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, data=params, headers={"X-Twilio-Signature": signature})
    response.raise_for_status()
    return parse_twiml(response.text)


def _via_balancer(stream_to: ServerThread, public: ServerThread, **kwargs: Any) -> SimulatedCall:
    # The load balancer keeps the public Host, which the stream's signature covers.
    host = public.url.removeprefix("http://")
    return SimulatedCall(
        stream_to.url, auth_token=TEST_AUTH_TOKEN, ws_headers={"X-Forwarded-Host": host}, **kwargs
    )


async def test_webhook_on_one_replica_stream_on_another(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    one = make_server(twilio_auth_token=TEST_AUTH_TOKEN)
    other = make_server(twilio_auth_token=TEST_AUTH_TOKEN)
    speech = await speak("One large pizza, please.")

    async with _via_balancer(other, one, from_number=CALLER, to_number=CALLED) as call:
        stream_url, parameters = await _webhook(one, call)
        await call.connect_stream(stream_url, parameters)
        await call.wait_for_bot_audio(timeout=30)
        (bot,) = other.app.state.admission.bots()
        assert (bot.call.call_sid, bot.call.from_number, bot.call.to_number) == (
            call.call_sid,
            CALLER,
            CALLED,
        )
        assert bot.call.parameters == {"tenant": "acme"}
        assert one.app.state.admission.running == 0

        await call.wait_for_bot_quiet(QUIET, timeout=30)
        reply = transcribe(await hear_reply(call, speech, timeout=30))
        assert "pizza" in reply.lower(), reply

    assert call.protocol_errors == []
    on_one, on_other = await scrape(one.url), await scrape(other.url)
    assert value(on_one, "switchboard_webhook_requests_total", outcome="connected") == 1
    assert value(on_other, "switchboard_webhook_requests_total", outcome="connected") == 0
    assert value(on_one, "switchboard_first_bot_audio_seconds_count", direction="inbound") == 0
    assert value(on_other, "switchboard_first_bot_audio_seconds_count", direction="inbound") == 1


async def test_a_full_replica_refuses_the_stream_another_accepted(
    make_server: MakeServer,
) -> None:
    one = make_server(twilio_auth_token=TEST_AUTH_TOKEN)
    full = make_server(twilio_auth_token=TEST_AUTH_TOKEN, max_calls=1)

    async with SimulatedCall(full.url, auth_token=TEST_AUTH_TOKEN) as holder:
        await holder.dial()
        await holder.wait_for_bot_audio(timeout=30)
        async with _via_balancer(full, one) as call:
            stream_url, parameters = await _webhook(one, call)
            await call.connect_stream(stream_url, parameters)
            await call.wait_closed(timeout=10)
        assert (call.close_code, call.close_reason) == (WS_TRY_AGAIN_LATER, "busy: at capacity")

    samples = await scrape(full.url)
    assert value(samples, "switchboard_calls_total", direction="inbound", outcome="rejected") == 1
