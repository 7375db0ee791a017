"""The caller simulator and the fake Twilio API, checked without a Switchboard server."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from websockets.asyncio.server import ServerConnection, serve

import simulate
import simulator
from simulator import (
    CallRejected,
    SimulatedCall,
    WebhookError,
    parse_twiml,
    pcm_to_ulaw,
    read_wav,
    stream_connect_url,
    synthesize,
    ulaw_to_pcm,
    write_wav,
)
from simulator.earpiece import Earpiece
from tests.fake_twilio import FakeTwilio

SID = re.compile(r"^(CA|MZ)[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def speech() -> bytes:
    return synthesize("Hello, I would like to book a table for two tonight.")


# -- Audio --------------------------------------------------------------------------


def test_ulaw_is_bit_exact_with_g711() -> None:
    audioop = pytest.importorskip("audioop")  # the classic codec, still in Python 3.11
    every_sample = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert pcm_to_ulaw(every_sample) == audioop.lin2ulaw(every_sample, 2)
    every_code = bytes(range(256))
    assert ulaw_to_pcm(every_code) == audioop.ulaw2lin(every_code, 2)


def test_ulaw_round_trip_on_speech_loses_little(speech: bytes) -> None:
    original = np.frombuffer(speech, "<i2").astype(np.float64)
    decoded = np.frombuffer(ulaw_to_pcm(pcm_to_ulaw(speech)), "<i2").astype(np.float64)
    assert 1.5 < len(original) / 8000 < 6  # real speech, at 8 kHz
    snr = 10 * np.log10(np.sum(original**2) / np.sum((original - decoded) ** 2))
    assert snr > 30


def test_wav_files_round_trip_and_resample(tmp_path: Path, speech: bytes) -> None:
    path = tmp_path / "speech.wav"
    write_wav(path, speech)
    assert read_wav(path) == speech

    import wave

    stereo_16k = tmp_path / "stereo.wav"
    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2")
    with wave.open(str(stereo_16k), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.repeat(tone, 2).tobytes())
    resampled = np.frombuffer(read_wav(stereo_16k), "<i2")
    assert len(resampled) == 8000
    assert 7000 < np.abs(resampled).max() < 9000


# -- TwiML and URLs --------------------------------------------------------------------


def test_twiml_stream_and_rejections() -> None:
    url, parameters = parse_twiml(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="wss://bot.example.com/ws"><Parameter name="lang" value="en"/></Stream>'
        "</Connect></Response>"
    )
    assert (url, parameters) == ("wss://bot.example.com/ws", {"lang": "en"})
    with pytest.raises(CallRejected) as rejected:
        parse_twiml('<Response><Reject reason="busy"/></Response>')
    assert rejected.value.reason == "busy"
    with pytest.raises(CallRejected):
        parse_twiml("<Response><Say>Hi</Say></Response>")
    assert stream_connect_url("http://127.0.0.1:8000", "wss://bot.example.com/ws") == (
        "ws://127.0.0.1:8000/ws"
    )
    assert stream_connect_url("https://a.example", "wss://b.example/x/ws?k=v") == (
        "wss://a.example/x/ws?k=v"
    )


# -- The media stream, against a tiny websockets server ------------------------------


Handler = Callable[[ServerConnection, list[tuple[float, dict[str, Any]]]], Awaitable[None]]


class FakeStreamServer:
    """A websocket server that records what the simulator sends, then runs a script."""

    def __init__(self, script: Handler) -> None:
        self.script = script
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.headers: dict[str, str] = {}
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.headers = dict(ws.request.headers.raw_items())
        reader = asyncio.create_task(self._record(ws))
        self._tasks.add(reader)
        try:
            await self.script(ws, self.received)
        finally:
            await reader

    async def _record(self, ws: ServerConnection) -> None:
        async for raw in ws:
            self.received.append((time.monotonic(), json.loads(raw)))

    def sent(self, event: str) -> list[dict[str, Any]]:
        return [message for _, message in self.received if message["event"] == event]


@pytest.fixture
async def stream_server() -> AsyncIterator[Callable[[Handler], Awaitable[FakeStreamServer]]]:
    servers = []

    async def start(script: Handler) -> FakeStreamServer:
        fake = FakeStreamServer(script)
        server = await serve(fake._handler, "127.0.0.1", 0)
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}"
        servers.append(server)
        return fake

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def wait_for(condition: Callable[[], bool], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while True:  # polling keeps the fakes free of test hooks
            if condition():
                return
            await asyncio.sleep(0.01)


def media(stream_sid: str, pcm: bytes) -> str:
    payload = base64.b64encode(pcm_to_ulaw(pcm)).decode()
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


@pytest.mark.asyncio
async def test_stream_clock_playout_marks_and_clear(stream_server: Any, speech: bytes) -> None:
    half_second = speech[8000 : 8000 + 8000]  # 0.5 s of speech at 8 kHz PCM16
    sent_at: dict[str, float] = {}

    async def script(ws: ServerConnection, received: list[tuple[float, dict[str, Any]]]) -> None:
        await wait_for(lambda: len(received) >= 2)
        stream_sid = received[1][1]["streamSid"]
        await ws.send(media(stream_sid, half_second))
        await ws.send(mark(stream_sid, "first"))
        sent_at["first"] = time.monotonic()
        await ws.send(media(stream_sid, half_second))
        await ws.send(mark(stream_sid, "second"))
        await ws.send("not json")
        await ws.send(json.dumps({"event": "bogus", "streamSid": stream_sid}))
        await asyncio.sleep(0.6)  # "first" has played; "second" is under way
        await ws.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
        sent_at["clear"] = time.monotonic()
        await ws.send(mark(stream_sid, "empty"))  # nothing buffered: echoed at once
        await ws.wait_closed()

    server = await stream_server(script)
    call = SimulatedCall(server.url, auth_token="secret", account_sid="AC" + "1" * 32)
    async with call:
        await call.connect_stream("wss://public.example/ws", {"lang": "en"})
        first_audio = await call.wait_for_bot_audio(timeout=5)
        await wait_for(lambda: len(call.marks_echoed) == 3)
        ended = await call.say(speech[:4000])  # 0.25 s
        await call.press("12")
        await call.silence(0.1)
    assert call.closed_by == "caller"

    # The caller's side of the wire.
    connected, start = server.received[0][1], server.received[1][1]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["streamSid"] == start["start"]["streamSid"] == call.stream_sid
    assert SID.match(call.stream_sid) and SID.match(call.call_sid)
    assert start["start"]["customParameters"] == {"lang": "en"}
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert server.headers["X-Twilio-Signature"] == RequestValidator("secret").compute_signature(
        "wss://public.example/ws", {}
    )
    sequence = [int(message["sequenceNumber"]) for _, message in server.received[1:]]
    assert sequence == list(range(1, len(sequence) + 1))

    frames = server.sent("media")
    for index, frame in enumerate(frames):
        fields = frame["media"]
        assert fields["track"] == "inbound"
        assert fields["chunk"] == str(index + 1)
        assert fields["timestamp"] == str(index * 20)
        assert isinstance(frame["sequenceNumber"], str)
        assert len(base64.b64decode(fields["payload"])) == 160
    # A real-time clock: as many frames as 20 ms slots since the start, give or take.
    arrivals = [at for at, message in server.received if message["event"] == "media"]
    elapsed = arrivals[-1] - arrivals[0]
    assert abs(elapsed / 0.02 - (len(arrivals) - 1)) < 5

    # The caller's speech went out whole, padded to a frame, then silence again.
    ulaw = b"".join(base64.b64decode(frame["media"]["payload"]) for frame in frames)
    spoken = pcm_to_ulaw(speech[:4000])
    assert spoken in ulaw and ulaw.endswith(b"\xff" * 160)
    assert call.utterance_ends == [ended]

    assert [m["dtmf"] for m in server.sent("dtmf")] == [
        {"track": "inbound_track", "digit": "1"},
        {"track": "inbound_track", "digit": "2"},
    ]
    (stop,) = server.sent("stop")
    assert stop["stop"] == {"accountSid": "AC" + "1" * 32, "callSid": call.call_sid}
    assert server.received[-1][1]["event"] == "stop"

    # The bot's side: playout, marks and clear.
    assert call.first_audio_at == first_audio
    echoes = {m["mark"]["name"]: at for at, m in server.received if m["event"] == "mark"}
    assert call.marks_echoed == ["first", "second", "empty"]
    assert echoes["first"] - sent_at["first"] > 0.4  # after 0.5 s of playout
    assert abs(echoes["second"] - sent_at["clear"]) < 0.2  # flushed by the clear
    assert call.clears == 1
    heard = len(call.heard) / 16000
    assert 0.52 < heard < 0.8  # 0.5 s, then part of the second half-second
    assert call.heard[:8000] == ulaw_to_pcm(pcm_to_ulaw(half_second))
    assert [m["event"] for _, m in call.received[:3]] == ["media", "mark", "media"]
    assert len(call.protocol_errors) == 2  # not JSON, unknown event; neither fatal


@pytest.mark.asyncio
async def test_server_hanging_up_ends_the_call(stream_server: Any) -> None:
    async def script(ws: ServerConnection, received: list[tuple[float, dict[str, Any]]]) -> None:
        await wait_for(lambda: len(received) >= 2)
        await ws.close(1008, "invalid signature")

    server = await stream_server(script)
    async with SimulatedCall(server.url) as call:
        await call.connect_stream("wss://public.example/ws", {})
        await call.wait_closed(timeout=5)
        assert "X-Twilio-Signature" not in server.headers
    assert (call.closed_by, call.close_code, call.close_reason) == (
        "server",
        1008,
        "invalid signature",
    )
    assert not server.sent("stop")


@pytest.mark.asyncio
async def test_dial_signs_the_webhook_and_the_stream() -> None:
    validator = RequestValidator("token")
    seen: dict[str, Any] = {"events": []}

    async def webhook(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(str(request.url), form, signature):
            return web.Response(status=403, text="invalid signature")
        seen["form"] = form
        twiml = (
            '<Response><Connect><Stream url="wss://public.example/ws">'
            f'<Parameter name="caller" value="{form["From"]}"/></Stream></Connect></Response>'
        )
        return web.Response(text=twiml, content_type="text/xml")

    async def media_stream(request: web.Request) -> web.WebSocketResponse:
        signature = request.headers.get("X-Twilio-Signature", "")
        seen["stream_signed"] = validator.validate("wss://public.example/ws", {}, signature)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            seen["events"].append(json.loads(message.data)["event"])
        return ws

    app = web.Application()
    app.router.add_post("/", webhook)
    app.router.add_get("/ws", media_stream)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with SimulatedCall(f"{base}/?lang=en", auth_token="token") as call:
            await call.dial()
            await call.silence(0.1)
        await wait_for(lambda: "stop" in seen["events"])
        assert seen["stream_signed"]
        assert seen["form"]["CallSid"] == call.call_sid
        assert seen["form"]["Direction"] == "inbound"
        assert call.parameters == {"caller": "+15550001111"}
        assert seen["events"][:3] == ["connected", "start", "media"]

        with pytest.raises(WebhookError) as refused:
            await SimulatedCall(base, auth_token="wrong").dial()
        assert refused.value.status == 403
    finally:
        await runner.cleanup()


def test_reply_starts_skip_bot_audio_that_runs_on() -> None:
    call = SimulatedCall("http://127.0.0.1:9")
    call.utterance_ends = [10.0, 20.0, 30.0]
    # A reply after silence; talk running through an utterance's end, then a
    # clear and the real reply; an utterance never answered.
    speech = np.full(160, 8000, dtype="<i2").tobytes()
    for arrived in (10.6, 10.62, 19.9, 20.1, 20.12):
        call.earpiece.media(arrived, speech)
    call.earpiece.clear(20.5)
    for arrived in (20.9, 21.5):
        call.earpiece.media(arrived, speech)
    assert call.reply_starts() == [10.6, 20.9, None]
    assert call.reply_latencies() == pytest.approx([0.6, 0.9])


def test_the_earpiece_tells_when_the_caller_heard_the_bot() -> None:
    earpiece = Earpiece()
    speech = np.full(160, 8000, dtype="<i2").tobytes()  # 20 ms each
    earpiece.media(0.0, speech * 2 + bytes(320) + speech)
    for tick in range(6):
        earpiece.play_frame(1.0 + tick * 0.02)
    # Played as the clock ticked: quiet frames and an empty queue are not heard.
    assert earpiece.heard_between(0.0, 9.0) == pytest.approx([1.0, 1.02, 1.06])
    earpiece.media(2.0, speech * 5)
    earpiece.play_frame(2.0)
    earpiece.clear(2.01)
    earpiece.play_frame(2.02)  # what a clear dropped is never heard
    assert earpiece.heard_between(1.5, 9.0) == [2.0]


# -- The command line entry point ---------------------------------------------------------


def test_simulate_py_still_offers_the_whole_public_api() -> None:
    """Code on other branches imports from the top-level ``simulate`` module."""
    missing = [
        name
        for name in simulator.__all__
        if getattr(simulate, name, None) is not getattr(simulator, name)
    ]
    assert not missing
    assert simulate.main is simulator.cli.main


# -- The fake Twilio REST API -----------------------------------------------------------


@pytest.fixture
def twilio() -> Any:
    with FakeTwilio() as fake:
        yield fake


def client_for(fake: FakeTwilio, token: str | None = None) -> Client:
    client = Client(fake.account_sid, token or fake.auth_token)
    client.api.base_url = fake.base_url
    return client


def test_fake_twilio_creates_calls_like_twilio(twilio: FakeTwilio) -> None:
    call = client_for(twilio).calls.create(
        to="+15550002222",
        from_="+15550001111",
        twiml="<Response><Hangup/></Response>",
        status_callback_event=["initiated", "answered", "completed"],
    )
    assert SID.match(call.sid or "")
    assert (call.status, call.direction, call.to) == ("queued", "outbound-api", "+15550002222")
    assert call.account_sid == twilio.account_sid
    (created,) = twilio.calls_created()
    assert created.auth_ok and created.path.endswith(f"/Accounts/{twilio.account_sid}/Calls.json")
    assert created.values("StatusCallbackEvent") == ["initiated", "answered", "completed"]
    assert created.value("Twiml") == "<Response><Hangup/></Response>"


def test_fake_twilio_checks_auth_and_fields(twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as denied:
        client_for(twilio, token="wrong").calls.create(
            to="+15550002222", from_="+15550001111", url="https://a.example/"
        )
    assert (denied.value.status, denied.value.code) == (401, 20003)

    with pytest.raises(TwilioRestException) as no_to:
        client_for(twilio).calls.create(to="", from_="+15550001111", url="https://a.example/")
    assert (no_to.value.status, no_to.value.code) == (400, 21201)

    with pytest.raises(TwilioRestException) as both:
        client_for(twilio).calls.create(
            to="+15550002222", from_="+15550001111", url="https://a.example/", twiml="<Response/>"
        )
    assert both.value.status == 400

    twilio.fail_next(429, 20429, "Too Many Requests")
    with pytest.raises(TwilioRestException) as busy:
        client_for(twilio).calls.create(
            to="+15550002222", from_="+15550001111", url="https://a.example/"
        )
    assert (busy.value.status, busy.value.code) == (429, 20429)

    assert [r.status for r in twilio.requests] == [401, 400, 400, 429]
    assert [r.auth_ok for r in twilio.requests] == [False, True, True, True]
    assert twilio.calls_created() == []


def test_fake_twilio_hangs_up_calls(twilio: FakeTwilio) -> None:
    client = client_for(twilio)
    inbound = "CA" + "2" * 32
    assert client.calls(inbound).update(status="completed").status == "completed"

    gone = "CA" + "3" * 32
    twilio.mark_gone(gone)
    with pytest.raises(TwilioRestException) as missing:
        client.calls(gone).update(status="completed")
    assert (missing.value.status, missing.value.code) == (404, 20404)
    assert [r.path.rsplit("/", 1)[1] for r in twilio.hangups()] == [
        f"{inbound}.json",
        f"{gone}.json",
    ]
