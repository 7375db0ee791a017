"""Exotel's Voicebot applet on /ws: simulated Exotel calls against a real server on loopback."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Callable

import numpy as np
import pytest
import soxr
from starlette.datastructures import Headers

from bot import EndReason
from settings import Settings
from telephony import HandshakeError, Unauthorized, identify
from telephony.access import admitted_providers, confirm
from telephony.exotel import (
    CHUNK_ALIGN,
    MAX_CHUNK,
    MIN_CHUNK,
    Rechunker,
    chunk_10ms_count,
    custom_parameters,
)
from telephony.exotel_rest import (
    ExotelApiError,
    ExotelClient,
    ExotelNotConfigured,
    stream_url,
)
from tests.conftest import MakeServer, offline_settings
from tests.exotel_line import ExotelLine
from tests.fake_exotel import FakeExotel
from tests.server_thread import ServerThread
from voice import VoiceStack

Transcribe = Callable[[bytes], str]
USER, PASSWORD = "exotel-applet", "s3cret-Pa55word"


def ws_url(server: ServerThread, credentials: tuple[str, str] | None = None) -> str:
    userinfo = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
    return f"ws://{userinfo}127.0.0.1:{server.port}/ws"


def valid_chunk(size: int) -> bool:
    return size % CHUNK_ALIGN == 0 and MIN_CHUNK <= size <= MAX_CHUNK


@pytest.fixture(scope="session")
def speak(voice_stack: VoiceStack) -> Callable[[str], bytes]:
    """The caller's voice: Piper speech as 8 kHz PCM16, as a phone line carries it."""

    @functools.cache
    def run(text: str) -> bytes:
        chunks = list(voice_stack.piper.synthesize(text))
        audio = np.concatenate([chunk.audio_int16_array for chunk in chunks]).astype(np.float32)
        audio8k = soxr.resample(audio, chunks[0].sample_rate, 8000)
        return np.clip(np.rint(audio8k), -32768, 32767).astype("<i2").tobytes()

    return run


def exotel_start(**media: str) -> dict[str, object]:
    line = ExotelLine("ws://unused", custom_parameters="greeting=Hi%20there&tier=gold")
    start = line.start_message()
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

    # Nothing configured: Exotel is accepted (and the server warns at start-up).
    assert admitted({}) == {"twilio", "exotel"}


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
    async with ExotelLine(ws_url(server), sample_rate=rate, custom_parameters=greeting) as line:
        await line.wait_for_bot_audio()
        await line.wait_for_bot_quiet()
    assert line.chunk_sizes and all(valid_chunk(size) for size in line.chunk_sizes)
    # The line decodes at its own rate: audio at any other rate would not transcribe.
    heard = transcribe(bytes(line.heard)).lower()
    assert "help desk" in heard, heard


async def test_caller_is_heard_interrupts_the_bot_and_presses_keys(
    make_server: MakeServer, transcribe: Transcribe, speak: Callable[[str], bytes]
) -> None:
    server = make_server()
    async with ExotelLine(ws_url(server)) as line:
        await line.wait_for_bot_audio()
        # Barge in while the greeting still plays: the server must clear Exotel's buffer.
        ended = await line.say(speak("The weather in Mumbai is lovely today."))
        await line.wait_for_bot_audio(after=ended)
        await line.wait_for_bot_quiet()
        assert line.clears >= 1
        heard = transcribe(bytes(line.heard)).lower()
        assert "lovely today" in heard, heard

        # Garbage on the line is dropped, not fatal.
        await line.send_raw("not json")
        await line.send_raw(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
        await line.send_raw(json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}))

        before = len(line.heard)
        pressed = asyncio.get_running_loop().time()
        await line.press("1#")
        await line.wait_for_bot_audio(after=pressed)
        await line.wait_for_bot_quiet()
        reply = transcribe(bytes(line.heard[before:])).lower()
        assert "pressed" in reply and "pound" in reply, reply
    assert all(valid_chunk(size) for size in line.chunk_sizes)


async def test_goodbye_plays_out_fully_before_the_socket_closes(
    make_server: MakeServer, transcribe: Transcribe, speak: Callable[[str], bytes]
) -> None:
    server = make_server()
    # Exotel's buffer and the network hold audio back; what is unplayed at close is lost.
    async with ExotelLine(ws_url(server), line_delay=0.3) as line:
        await line.wait_for_bot_audio()
        await line.wait_for_bot_quiet()
        before = len(line.heard)
        await line.say(speak("Goodbye."))
        await line.wait_closed(timeout=30)
    assert line.closed_by == "server" and line.close_code == 1000
    assert not line.unplayed_speech
    tail = transcribe(bytes(line.heard[before:])).lower()
    assert "thanks for calling" in tail, tail


async def test_a_long_farewell_on_drain_is_heard_to_the_last_word(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    server = make_server()
    farewell = "We are closing for maintenance now. Please call again tomorrow. Thank you."
    async with ExotelLine(ws_url(server), line_delay=0.3) as line:
        await line.wait_for_bot_audio()
        await line.wait_for_bot_quiet()
        before = len(line.heard)
        (bot,) = server.app.state.calls.bots()
        server.call(bot.say_goodbye(farewell, EndReason.DRAINED))
        await line.wait_closed(timeout=30)
    assert line.closed_by == "server" and not line.unplayed_speech
    tail = transcribe(bytes(line.heard[before:])).lower()
    assert tail.rstrip(". ").endswith("thank you"), tail


async def test_bad_basic_credentials_are_refused_before_the_pipeline_starts(
    make_server: MakeServer,
) -> None:
    server = make_server(exotel_ws_username=USER, exotel_ws_password=PASSWORD)
    for credentials in ((USER, "wrong"), ("intruder", PASSWORD)):
        async with ExotelLine(ws_url(server, credentials)) as line:
            await line.wait_closed(timeout=10)
        assert (line.close_code, line.close_reason) == (1008, "invalid credentials")
        assert not line.received
    assert len(server.app.state.calls) == 0

    # Without credentials an upgrade may only be an (unchecked) Twilio stream, not Exotel.
    async with ExotelLine(ws_url(server)) as line:
        await line.wait_closed(timeout=10)
    assert (line.close_code, line.close_reason) == (1008, "no valid exotel credentials")

    async with ExotelLine(ws_url(server, (USER, PASSWORD))) as line:
        await line.wait_for_bot_audio()
        assert len(server.app.state.calls) == 1


async def test_caller_hang_up_ends_the_call(make_server: MakeServer) -> None:
    server = make_server()
    async with ExotelLine(ws_url(server)) as line:
        await line.wait_for_bot_audio()
    for _ in range(200):
        if not server.app.state.calls:
            break
        await asyncio.sleep(0.05)
    assert not server.app.state.calls, "the call outlived the caller's stop"


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
