"""Media stream messages: what the caller's side sends, and reading what the server sends.

Each provider's format (``TwilioMediaStream``, ``ExotelMediaStream``) is a
``WireFormat``: it builds the messages its provider sends and says how the
bot's audio is carried; reading the server's messages is shared.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from simulator.audio import FRAME_BYTES


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


class WireFormat(abc.ABC):
    """One provider's media stream message format, for one stream."""

    KNOWN_EVENTS = frozenset({"media", "mark", "clear"})
    # The field that names the stream in the server's messages.
    STREAM_SID_FIELD: ClassVar[str]

    def __init__(self, *, account_sid: str, call_sid: str, stream_sid: str) -> None:
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._sequence = 0
        self.silence_frame = self.encode_frames(b"\0" * FRAME_BYTES)[0]

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    @abc.abstractmethod
    def encode_frames(self, pcm8k: bytes) -> list[str]:
        """Split 8 kHz PCM16 into 20 ms media payloads, padding the last with silence."""

    @abc.abstractmethod
    def decode_audio(self, payload: bytes) -> tuple[bytes, str | None]:
        """The 8 kHz PCM16 audio of a server ``media`` payload, and what is wrong with it."""

    @abc.abstractmethod
    def connected(self) -> dict[str, Any]:
        """The ``connected`` message that opens the stream."""

    @abc.abstractmethod
    def start(self, custom_parameters: dict[str, str]) -> dict[str, Any]:
        """The ``start`` message, with the stream's custom parameters."""

    @abc.abstractmethod
    def media(self, payload: str, *, chunk: int, timestamp_ms: int) -> dict[str, Any]:
        """One ``media`` message of the caller's audio."""

    @abc.abstractmethod
    def dtmf(self, digit: str) -> dict[str, Any]:
        """One keypad press."""

    @abc.abstractmethod
    def mark(self, name: str) -> dict[str, Any]:
        """A ``mark`` echoed back once the audio before it has played."""

    @abc.abstractmethod
    def stop(self) -> dict[str, Any]:
        """The ``stop`` message of a caller hanging up."""

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
        field = self.STREAM_SID_FIELD
        if data.get(field) != self.stream_sid:
            error = f"{event}: {field} {data.get(field)!r} is not {self.stream_sid!r}"
        if event == "media":
            payload = (data.get("media") or {}).get("payload")
            if not isinstance(payload, str):
                return ServerMessage(event, data, error="media: no payload")
            try:
                decoded = base64.b64decode(payload, validate=True)
            except binascii.Error:
                return ServerMessage(event, data, error="media: payload is not base64")
            audio, problem = self.decode_audio(decoded)
            return ServerMessage(event, data, audio=audio, error=error or problem)
        if event == "mark":
            name = (data.get("mark") or {}).get("name")
            if not isinstance(name, str):
                return ServerMessage(event, data, error="mark: no name")
            return ServerMessage(event, data, mark=name, error=error)
        return ServerMessage(event, data, error=error)
