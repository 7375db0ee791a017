"""Twilio's side of a call: SIDs, the Media Streams message format, and TwiML's ``<Stream>``."""

from __future__ import annotations

import base64
import secrets
import xml.etree.ElementTree as ElementTree
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from simulator.audio import FRAME_SAMPLES, SAMPLE_RATE, ULAW_SILENCE, pcm_to_ulaw, ulaw_to_pcm
from simulator.errors import CallRejected
from simulator.wire import WireFormat


def new_sid(prefix: str) -> str:
    """Return a random Twilio-style SID such as ``CA`` + 32 hex digits."""
    return prefix + secrets.token_hex(16)


class TwilioMediaStream(WireFormat):
    """The Twilio Media Streams message format, for one stream.

    Builds what Twilio sends and parses what a bidirectional stream may
    send back.
    """

    STREAM_SID_FIELD = "streamSid"

    def encode_frames(self, pcm8k: bytes) -> list[str]:
        """Split PCM into 20 ms media payloads, padding the last with silence."""
        ulaw = pcm_to_ulaw(pcm8k)
        ulaw += bytes([ULAW_SILENCE]) * (-len(ulaw) % FRAME_SAMPLES)
        return [
            base64.b64encode(ulaw[i : i + FRAME_SAMPLES]).decode("ascii")
            for i in range(0, len(ulaw), FRAME_SAMPLES)
        ]

    def decode_audio(self, payload: bytes) -> tuple[bytes, str | None]:
        """μ-law, 8 kHz: any length is fine."""
        return ulaw_to_pcm(payload), None

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
