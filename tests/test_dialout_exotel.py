"""Dial-out through Exotel, end to end: what Connect Voice AI is asked for, the settings it
needs, and the placed call answered by a simulated Exotel callee."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from dialout.placers import exotel_status_token
from tests.conftest import (
    OWN_URL,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    MakeServer,
    Transcribe,
    offline_settings,
)
from tests.conversation import hear_greeting, words
from tests.dialout_providers import (
    AUTH,
    CALLER_ID,
    EXOTEL_CALLEE,
    KEY,
    ExotelDialout,
    callback_url,
    exotel_answers,
    http,
    latest,
    twilio_settings,
)
from tests.fake_exotel import FakeExotel
from tests.fake_twilio import FakeTwilio


@pytest.fixture
def dialout(exotel: FakeExotel) -> ExotelDialout:
    """Dial-out through the fake Exotel."""
    return ExotelDialout(exotel)


# -- Placing the call ------------------------------------------------------------------


async def test_exotel_dialout_asks_connect_voice_ai_to_stream_the_call_to_ws(
    make_server: MakeServer, dialout: ExotelDialout
) -> None:
    server = dialout.server(make_server)
    placed = await dialout.dial(
        server,
        {
            "to": EXOTEL_CALLEE,
            "parameters": {"customer_id": "42", "greeting": "Namaste & welcome"},
            "time_limit": 600,
            "record": True,
        },
    )
    sent = dialout.check_placed(placed)
    assert sent.path == f"/v1/Accounts/{dialout.fake.account_sid}/Calls/connect.json"
    assert (sent.value("From"), sent.value("CallerId")) == (EXOTEL_CALLEE, CALLER_ID)
    assert sent.value("StreamType") == "bidirectional"
    netloc = urlsplit(server.url).netloc
    assert sent.value("StreamUrl") == (
        f"ws://exotel-applet:p%40ss%3Aw%2Frd%231@{netloc}/ws"
        "?direction=outbound&customer_id=42&greeting=Namaste+%26+welcome"
    )
    assert sent.value("CustomField") == "customer_id=42&greeting=Namaste+%26+welcome"
    token = exotel_status_token(offline_settings(**dialout.settings()))
    assert re.fullmatch(
        rf"{server.url}/exotel/status/{token}\?attempt=attempt-[0-9a-f]{{32}}", callback_url(sent)
    )
    assert sent.values("StatusCallbackEvents[]") == ["answered", "terminal"]
    assert (sent.value("TimeLimit"), sent.value("Record")) == ("600", "true")

    call_sid = placed[2]["call_sid"]
    expected: dict[str, Any] = {
        "call_sid": call_sid,
        "status": "in-progress",
        "to": EXOTEL_CALLEE,
        "from": CALLER_ID,
        "answered_by": None,
        "duration": None,
    }
    # The call's record holds more (times, transcript); the status part is this.
    assert (await latest(server, call_sid)).items() >= expected.items()


async def test_public_url_and_from_name_the_stream_and_the_caller_id(
    make_server: MakeServer, dialout: ExotelDialout
) -> None:
    server = dialout.server(make_server, public_url="https://bot.example.com")
    status, _, body = await dialout.dial(server, {"to": EXOTEL_CALLEE, "from": "+918000000001"})
    assert status == 201, body
    assert body["from"] == "+918000000001"
    [sent] = dialout.placed()
    assert sent.value("CallerId") == "+918000000001"
    assert sent.value("StreamUrl") == (
        "wss://exotel-applet:p%40ss%3Aw%2Frd%231@bot.example.com/ws?direction=outbound"
    )
    assert callback_url(sent).startswith("https://bot.example.com/exotel/status/")
    assert sent.value("CustomField") is None  # no parameters, nothing to carry


async def test_the_default_provider_is_still_twilio(
    make_server: MakeServer, dialout: ExotelDialout, twilio: FakeTwilio
) -> None:
    server = dialout.server(make_server, **twilio_settings(twilio.base_url))
    status, _, body = await http(
        "POST", f"{server.url}/dialout", json_body={"to": EXOTEL_CALLEE}, headers=AUTH
    )
    assert status == 201, body
    assert body["call_sid"].startswith("CA")
    assert len(twilio.calls_created()) == 1
    assert dialout.fake.requests == []


def test_dialout_may_run_on_exotel_credentials_alone() -> None:
    exotel_only = {
        "exotel_api_key": "key",
        "exotel_api_token": "token",
        "exotel_account_sid": "acct",
        "exotel_caller_id": CALLER_ID,
        "public_url": "https://bot.example.com",
    }
    settings = offline_settings(dialout_api_key=KEY, **exotel_only)
    assert settings.can_dial_exotel and settings.dials_out
    # One field short of Exotel's credentials, and no Twilio: the key opens the API only.
    partial = offline_settings(dialout_api_key=KEY, **(exotel_only | {"exotel_caller_id": ""}))
    assert not partial.can_dial_exotel and not partial.dials_out


async def test_exotel_dialout_without_exotel_credentials_is_503(
    make_server: MakeServer, dialout: ExotelDialout
) -> None:
    server = make_server(
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
        dialout_api_key=KEY,
        public_url=OWN_URL,
    )
    status, _, body = await dialout.dial(server, {"to": EXOTEL_CALLEE})
    assert status == 503, body
    assert "EXOTEL_CALLER_ID" in body["detail"]


# -- The callee answers --------------------------------------------------------------------


async def test_the_exotel_callee_hears_the_requested_greeting(
    make_server: MakeServer, dialout: ExotelDialout, transcribe: Transcribe
) -> None:
    server = dialout.server(make_server, outbound_greeting_wait_secs=0.5)
    greeting = "Good morning, this is the clinic calling about your appointment."
    status, _, placed = await dialout.dial(
        server, {"to": EXOTEL_CALLEE, "parameters": {"greeting": greeting, "id": "7"}}
    )
    assert status == 201, placed
    [sent] = dialout.placed()
    call = exotel_answers(sent, server, placed["call_sid"])
    async with call:
        await call.connect_stream(sent.value("StreamUrl") or "", call.extra_params)
        await hear_greeting(call, timeout=25)

        [bot] = server.app.state.admission.bots()
        assert (bot.call.provider, bot.call.call_sid) == ("exotel", placed["call_sid"])
        assert bot.call.outbound
        assert bot.call.parameters == {"greeting": greeting, "id": "7"}
    assert not call.protocol_errors, call.protocol_errors
    heard = await asyncio.to_thread(transcribe, call.heard)
    assert {"clinic", "appointment"} <= words(heard), heard
