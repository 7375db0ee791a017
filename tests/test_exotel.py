"""Exotel's Voicebot applet on /ws: simulated Exotel calls against a real server on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from bot import EndReason
from dialout.exotel import (
    ExotelApiError,
    ExotelClient,
    ExotelNotConfigured,
    stream_url,
)
from settings import Settings
from simulator import ExotelCall, ExotelMediaStream, cli, synthesize
from telephony import HandshakeError, Unauthorized, identify
from telephony.access import admitted_providers, confirm
from telephony.exotel import custom_parameters
from telephony.exotel_playout import (
    CHUNK_ALIGN,
    MAX_CHUNK,
    MIN_CHUNK,
    Rechunker,
    chunk_10ms_count,
)
from tests.conftest import MakeServer, offline_settings
from tests.fake_exotel import FakeExotel

Transcribe = Callable[[bytes], str]
USER, PASSWORD = "exotel-applet", "s3cret-Pa55word"
# A busy shared machine may pause the bot between sentences; quiet means longer than that.
QUIET = 2.0


def valid_chunk(size: int) -> bool:
    return size % CHUNK_ALIGN == 0 and MIN_CHUNK <= size <= MAX_CHUNK


def chunk_sizes(call: ExotelCall) -> list[int]:
    """The size of every `media` chunk the server sent on the call."""
    return [
        len(base64.b64decode(message["media"]["payload"]))
        for _, message in call.received
        if message.get("event") == "media"
    ]


async def speak(text: str) -> bytes:
    """The caller's voice: Piper speech as 8 kHz PCM16."""
    return await asyncio.to_thread(synthesize, text)


def exotel_start(**media: str) -> dict[str, object]:
    wire = ExotelMediaStream(account_sid="acct", call_sid="CA1", stream_sid="MZ1")
    start = wire.start({})
    start["start"].update(  # type: ignore[union-attr]
        {"from": "+919876543210", "to": "+918047491899"},
        custom_parameters="greeting=Hi%20there&tier=gold",
    )
    start["start"]["media_format"].update(media)  # type: ignore[index]
    return start


# -- The start message and the chunk rules --------------------------------------------


def test_start_is_read_from_snake_case_fields_and_a_query_string() -> None:
    call = identify(exotel_start(sample_rate="16000"))
    assert call.provider == "exotel"
    assert call.sample_rate == 16000
    assert (call.from_number, call.to_number) == ("+919876543210", "+918047491899")
    assert call.parameters == {"greeting": "Hi there", "tier": "gold"}
    assert call.direction == "inbound"


def test_custom_parameters_arrive_as_object_query_or_json_text() -> None:
    expected = {"greeting": "Hi", "direction": "outbound"}
    assert custom_parameters(expected) == expected
    assert custom_parameters("greeting=Hi&direction=outbound") == expected
    assert custom_parameters(json.dumps(expected)) == expected
    assert custom_parameters(None) == custom_parameters("") == {}


@pytest.mark.parametrize(
    "media", [{"sample_rate": "24000"}, {"encoding": "audio/x-mulaw"}, {"sample_rate": "fast"}]
)
def test_a_format_the_pipeline_cannot_run_is_refused_with_a_reason(
    media: dict[str, str],
) -> None:
    with pytest.raises(HandshakeError, match="Exotel"):
        identify(exotel_start(**media))


def test_rechunker_only_emits_chunks_exotel_plays_without_gaps() -> None:
    rng = random.Random(4)
    chunker, sent, total = Rechunker(), [], 0
    for _ in range(2000):
        size = 2 * rng.choice([1, 80, 160, 321, 640, 1600, 3200, 9999, 70_000])
        total += size
        chunk = chunker.push(bytes(size))
        if chunk is not None:
            sent.append(len(chunk))
    assert sent and all(valid_chunk(size) for size in sent)
    assert sum(sent) + chunker.pending == total
    assert chunker.pending < MIN_CHUNK + MAX_CHUNK


@pytest.mark.parametrize("rate", [8000, 16000])
def test_transport_writes_are_already_valid_exotel_chunks(rate: int) -> None:
    assert valid_chunk(chunk_10ms_count(rate) * rate // 100 * 2)


# -- Who may open /ws as Exotel --------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    from base64 import b64encode

    return {"authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


def admitted(headers: dict[str, str], peer: str = "127.0.0.1", **settings: object) -> set[str]:
    return set(
        admitted_providers(Headers(headers), peer, "wss://x/ws", offline_settings(**settings))
    )


def test_exotel_credentials_and_addresses_decide_admission() -> None:
    creds = {"exotel_ws_username": USER, "exotel_ws_password": PASSWORD}
    assert admitted(basic(USER, PASSWORD), **creds) == {"exotel"}
    for wrong in (basic(USER, "nope"), basic("someone", PASSWORD), {"authorization": "Basic !"}):
        with pytest.raises(Unauthorized, match="invalid credentials"):
            admitted(wrong, **creds)
    # No credentials at all: only as an unchecked Twilio stream, never as Exotel.
    assert admitted({}, **creds) == {"twilio"}
    with pytest.raises(Unauthorized):
        admitted({}, twilio_auth_token="t0ken", **creds)

    allow = {"exotel_allowed_ips": "203.0.113.0/24"}
    assert "exotel" in admitted({}, peer="203.0.113.9", **allow)
    assert "exotel" not in admitted({}, peer="127.0.0.1", **allow)
    # X-Forwarded-For counts only from a trusted proxy.
    forwarded = {"x-forwarded-for": "203.0.113.9"}
    assert "exotel" not in admitted(forwarded, **allow)
    assert "exotel" in admitted(forwarded, exotel_trusted_proxies="127.0.0.1", **allow)

    # Nothing configured: Exotel is accepted (and the server warns at start-up)...
    assert admitted({}) == {"twilio", "exotel"}
    # ...unless Twilio's signatures are checked: that is no way in through Exotel.
    with pytest.raises(Unauthorized, match="invalid signature"):
        admitted({}, twilio_auth_token="t0ken")
    with pytest.raises(Unauthorized, match="invalid credentials"):
        admitted(basic("any", "one"), twilio_auth_token="t0ken")


def test_a_stream_must_be_the_provider_its_credentials_vouch_for() -> None:
    call = identify(exotel_start())
    confirm(call, frozenset({"exotel"}))
    with pytest.raises(Unauthorized, match="exotel"):
        confirm(call, frozenset({"twilio"}))


# -- Calls -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_bot_answers_in_the_streams_format_and_rate_with_the_custom_greeting(
    make_server: MakeServer, transcribe: Transcribe, rate: int
) -> None:
    server = make_server()
    greeting = {"greeting": "Good morning and welcome to the help desk."}
    async with ExotelCall(server.url, sample_rate=rate, params=greeting) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        await call.wait_for_bot_quiet(quiet=QUIET)
    sizes = chunk_sizes(call)
    assert sizes and all(valid_chunk(size) for size in sizes), sizes
    assert not call.protocol_errors, call.protocol_errors
    # The caller decodes at the stream's rate: audio at any other rate would not transcribe.
    heard = transcribe(call.heard).lower()
    assert "help desk" in heard, heard


async def test_caller_is_heard_interrupts_the_bot_and_presses_keys(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    server = make_server()
    sentence = await speak("The weather in Mumbai is lovely today.")
    async with ExotelCall(server.url) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        # Barge in while the greeting still plays: the server must clear Exotel's buffer.
        ended = await call.say(sentence)
        await call.wait_for_bot_audio(after=ended, timeout=20)
        await call.wait_for_bot_quiet(quiet=QUIET)
        assert call.clears >= 1
        heard = transcribe(call.heard).lower()
        assert "lovely today" in heard, heard

        # Garbage on the line is dropped, not fatal.
        await call.send_raw("not json")
        await call.send_raw(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
        await call.send_raw(json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}))

        before = len(call.heard)
        pressed = time.monotonic()
        await call.press("1#")
        await call.wait_for_bot_audio(after=pressed, timeout=20)
        await call.wait_for_bot_quiet(quiet=QUIET)
        reply = transcribe(call.heard[before:]).lower()
        assert "pressed" in reply and "pound" in reply, reply
    assert not call.protocol_errors, call.protocol_errors


async def test_goodbye_plays_out_fully_before_the_socket_closes(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    server = make_server()
    goodbye = await speak("Goodbye.")
    # The network and Exotel's buffer hold audio back; what is unplayed at close is lost.
    async with ExotelCall(server.url, line_delay=0.3) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        await call.wait_for_bot_quiet(quiet=QUIET)
        before = len(call.heard)
        await call.say(goodbye)
        await call.wait_closed(timeout=30)
    assert call.closed_by == "server" and call.close_code == 1000
    assert not call.unplayed_speech
    tail = transcribe(call.heard[before:]).lower()
    assert "thanks for calling" in tail, tail


async def test_a_long_farewell_on_drain_is_heard_to_the_last_word(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    server = make_server()
    farewell = "We are closing for maintenance now. Please call again tomorrow. Thank you."
    async with ExotelCall(server.url, line_delay=0.3) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        await call.wait_for_bot_quiet(quiet=QUIET)
        before = len(call.heard)
        (bot,) = server.app.state.admission.bots()
        server.call(bot.say_goodbye(farewell, EndReason.DRAINED))
        await call.wait_closed(timeout=30)
    assert call.closed_by == "server" and not call.unplayed_speech
    tail = transcribe(call.heard[before:]).lower()
    assert tail.rstrip(". ").endswith("thank you"), tail


async def test_bad_basic_credentials_are_refused_before_the_pipeline_starts(
    make_server: MakeServer,
) -> None:
    server = make_server(exotel_ws_username=USER, exotel_ws_password=PASSWORD)
    for user, password in ((USER, "wrong"), ("intruder", PASSWORD)):
        async with ExotelCall(server.url, ws_user=user, ws_password=password) as call:
            await call.dial()
            await call.wait_closed(timeout=10)
        assert (call.close_code, call.close_reason) == (1008, "invalid credentials")
        assert not call.received
    assert server.app.state.admission.running == 0

    # Without credentials an upgrade may only be an (unchecked) Twilio stream, not Exotel.
    async with ExotelCall(server.url) as call:
        await call.dial()
        await call.wait_closed(timeout=10)
    assert (call.close_code, call.close_reason) == (1008, "no valid exotel credentials")

    async with ExotelCall(server.url, ws_user=USER, ws_password=PASSWORD) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        assert server.app.state.admission.running == 1


async def test_caller_hang_up_ends_the_call(make_server: MakeServer) -> None:
    server = make_server()
    async with ExotelCall(server.url) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
    for _ in range(200):
        if not server.app.state.admission.running:
            break
        await asyncio.sleep(0.05)
    assert not server.app.state.admission.running, "the call outlived the caller's stop"


def test_the_simulator_command_line_plays_exotel(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server(exotel_ws_username=USER, exotel_ws_password=PASSWORD)
    out = tmp_path / "reply.wav"
    base = ["--provider", "exotel", "--url", server.url, "--ws-user", USER, "--out", str(out)]
    assert cli.main([*base, "--ws-password", "wrong"]) == 1
    assert "invalid credentials" in capsys.readouterr().err
    assert cli.main([*base, "--ws-password", PASSWORD, "--sample-rate", "16000"]) == 0
    assert out.stat().st_size > 8000  # the greeting, as the caller heard it
    assert "protocol errors" not in capsys.readouterr().err


# -- Dial-out through Exotel's Connect Voice AI API --------------------------------------


def dialing_settings(exotel: FakeExotel, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "exotel_api_base_url": exotel.base_url,
        "exotel_api_key": exotel.api_key,
        "exotel_api_token": exotel.api_token,
        "exotel_account_sid": exotel.account_sid,
        "exotel_caller_id": "08047491899",
        "exotel_ws_username": USER,
        "exotel_ws_password": PASSWORD,
    }
    return offline_settings(**(values | overrides))


async def test_dial_out_asks_exotel_to_stream_the_call_to_ws() -> None:
    with FakeExotel() as exotel:
        settings = dialing_settings(exotel)
        url = stream_url("https://bot.example.com", {"greeting": "Hi Asha"}, settings)
        call = await ExotelClient(settings).connect(
            "+919876543210",
            url,
            custom_field="order-42",
            status_callback="https://bot.example.com/exotel/status",
        )
        (request,) = exotel.calls_placed()
    assert call.sid and call.status == "in-progress"
    assert request.auth_ok
    assert request.path == f"/v1/Accounts/{exotel.account_sid}/Calls/connect.json"
    assert request.value("From") == "+919876543210"
    assert request.value("CallerId") == "08047491899"
    assert request.value("StreamType") == "bidirectional"
    assert request.value("StreamUrl") == (
        f"wss://{USER}:{PASSWORD}@bot.example.com/ws?direction=outbound&greeting=Hi+Asha"
    )
    assert request.value("CustomField") == "order-42"
    assert request.value("StatusCallback") == "https://bot.example.com/exotel/status"
    assert request.values("StatusCallbackEvents[]") == ["answered", "terminal"]


async def test_dial_out_errors_are_clear() -> None:
    with FakeExotel() as exotel:
        good = dialing_settings(exotel)
        url = stream_url("https://bot.example.com", {}, good)
        with pytest.raises(ExotelApiError) as refused:
            await ExotelClient(dialing_settings(exotel, exotel_api_token="wrong")).connect(
                "+919876543210", url
            )
        assert refused.value.status == 401
        exotel.fail_next(403, "Voice AI is not enabled for this account")
        with pytest.raises(ExotelApiError, match="not enabled"):
            await ExotelClient(good).connect("+919876543210", url)
        assert not exotel.calls_placed()
    with pytest.raises(ExotelNotConfigured):
        await ExotelClient(offline_settings()).connect("+919876543210", url)
    with pytest.raises(ValueError, match="parameters"):
        stream_url("https://x", {"a": "1", "b": "2", "c": "3"}, offline_settings())
    with pytest.raises(ExotelApiError) as unreachable:
        await ExotelClient(dialing_settings(exotel)).connect("+919876543210", url)
    assert unreachable.value.status == 0
