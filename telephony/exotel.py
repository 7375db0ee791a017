"""Exotel's Voicebot applet: recognising a stream, and its serializer.

Exotel speaks Twilio's Media Streams protocol with snake_case fields and raw
16-bit PCM instead of μ-law. It plays only some chunk sizes without gaps, and
has no hang-up message: closing the websocket ends the applet at once, dropping
whatever audio Exotel has not played yet. So the serializer sends only valid
chunks and keeps a model of Exotel's playout (both in `exotel_playout`) and,
when the bot ends the call, holds the close until the farewell has been heard,
with a margin for the network. Who may open a stream as Exotel: `access`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    AudioRawFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

from settings import Settings
from telephony.call_info import RESERVED_PARAMETERS, CallInfo
from telephony.errors import HandshakeError
from telephony.exotel_playout import Playout, Rechunker, chunk_10ms_count
from telephony.serializer import CallEvents, SafeDecoding

NAME = "exotel"
QUIET_EVENTS = frozenset({"connected", "start"})

# The rates this server's pipeline runs at (Silero VAD takes 8 and 16 kHz only).
SUPPORTED_RATES = frozenset({8000, 16000})
# Names Exotel and its docs use for 16-bit little-endian linear PCM.
PCM16_ENCODINGS = frozenset(
    {"raw", "audio/x-raw", "slin", "audio/l16", "l16", "linear16", "pcm", "audio/pcm", "pcm16"}
)
# Exotel's URL parameters that ride along with the custom ones and are not call data.
WIRE_PARAMETERS = frozenset({"sample-rate"})
# Network and Exotel's jitter buffer, on top of the modelled playout, before closing.
PLAYOUT_MARGIN_SECS = 0.5
# However long the model says, never hold a finished call open longer than this.
MAX_FAREWELL_WAIT_SECS = 15.0


def matches(start: dict[str, Any]) -> bool:
    """Whether a `start` message is Exotel's (snake_case `stream_sid`)."""
    body = start.get("start")
    return "stream_sid" in start or (isinstance(body, dict) and "stream_sid" in body)


def custom_parameters(raw: object) -> dict[str, str]:
    """Read `start.custom_parameters`: a JSON object, or the applet URL's query string.

    Exotel documents an object; some applet versions send the `k=v&k=v` text instead.
    """
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                return custom_parameters(json.loads(text))
            except ValueError:
                pass
        return dict(parse_qsl(text.lstrip("?"), keep_blank_values=True))
    if raw is not None:
        logger.warning(f"Ignoring Exotel custom_parameters of type {type(raw).__name__}")
    return {}


def call_info(start: dict[str, Any]) -> CallInfo:
    """Read an Exotel `start` message.

    Raises:
        HandshakeError: The stream's audio is not 16-bit PCM at a rate the pipeline runs at.
    """
    body = start.get("start")
    body = body if isinstance(body, dict) else {}
    custom = custom_parameters(body.get("custom_parameters"))
    media = body.get("media_format")
    media = media if isinstance(media, dict) else {}
    encoding = str(media.get("encoding") or "raw")
    if encoding.split(";")[0].strip().lower() not in PCM16_ENCODINGS:
        raise HandshakeError(f"Exotel stream encoding {encoding!r} is not 16-bit PCM")
    try:
        rate = int(media.get("sample_rate") or 8000)
    except (TypeError, ValueError):
        raise HandshakeError(f"Exotel sample_rate {media.get('sample_rate')!r}") from None
    if rate not in SUPPORTED_RATES:
        raise HandshakeError(
            f"Exotel stream at {rate} Hz: set ?sample-rate=8000 or 16000 on the applet URL"
        )
    direction = custom.get("direction", "inbound")
    if direction not in ("inbound", "outbound"):
        direction = "inbound"
    return CallInfo(
        provider=NAME,
        call_sid=str(body.get("call_sid", "")),
        stream_sid=str(body.get("stream_sid") or start.get("stream_sid", "")),
        account_sid=str(body.get("account_sid", "")),
        from_number=str(body.get("from", "")),
        to_number=str(body.get("to", "")),
        direction=direction,
        parameters={
            k: v
            for k, v in custom.items()
            if k not in RESERVED_PARAMETERS and k not in WIRE_PARAMETERS
        },
        sample_rate=rate,
        encoding=encoding,
    )


def transport_options(call: CallInfo) -> dict[str, Any]:
    """Websocket transport settings for an Exotel call.

    Pipecat's output transport writes audio in chunks of `audio_out_10ms_chunks`
    and pads an utterance's last chunk with silence. Sizing those chunks to
    Exotel's smallest valid chunk (200 ms at 8 kHz, 100 ms at 16 kHz) means
    every write is already valid and no audio waits in the serializer for more.
    """
    return {"audio_out_10ms_chunks": chunk_10ms_count(call.sample_rate)}


class ExotelSerializer(SafeDecoding, FrameSerializer):
    """Exotel's Voicebot protocol for Pipecat's websocket transport.

    Beyond Pipecat's stock Exotel serializer it reads the media format from
    `start`, sends only chunks Exotel plays without gaps, ends the call on
    `stop`, survives malformed frames, and lets the farewell play out before
    the websocket closes.
    """

    def __init__(self, call: CallInfo, settings: Settings, events: CallEvents):
        """Build the serializer for one call.

        Args:
            call: The call, from its `start` message.
            settings: Server settings (unused today; the same signature as every provider).
            events: Where `stop` is reported.
        """
        super().__init__(FrameSerializer.InputParams())
        self.call = call
        self.events = events
        self.marks_played: list[str] = []
        self._wire_rate = call.sample_rate
        self._pipeline_rate = call.sample_rate
        self._input_resampler = create_stream_resampler()
        self._output_resampler = create_stream_resampler()
        self._chunks = Rechunker()
        self._playout = Playout(call.sample_rate)

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Learn the pipeline's audio rate."""
        self._pipeline_rate = setup.audio_in_sample_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Encode a frame for Exotel."""
        if isinstance(frame, InterruptionFrame):
            self._chunks.clear()
            self._playout.cleared()
            return json.dumps({"event": "clear", "stream_sid": self.call.stream_sid})
        if isinstance(frame, AudioRawFrame):
            return await self._media(frame)
        if isinstance(frame, EndFrame):
            await self._let_speech_play_out()
            return None
        if isinstance(frame, CancelFrame):
            return None
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            return None if self.should_ignore_frame(frame) else json.dumps(frame.message)
        return None

    async def _media(self, frame: AudioRawFrame) -> str | None:
        pcm = frame.audio
        if frame.sample_rate != self._wire_rate:
            pcm = await self._output_resampler.resample(pcm, frame.sample_rate, self._wire_rate)
        chunk = self._chunks.push(pcm)
        if chunk is None:
            return None
        self._playout.sent(chunk, time.monotonic())
        payload = base64.b64encode(chunk).decode("ascii")
        return json.dumps(
            {"event": "media", "stream_sid": self.call.stream_sid, "media": {"payload": payload}}
        )

    async def _let_speech_play_out(self) -> None:
        # Closing the websocket drops Exotel's unplayed audio. Pipecat paces writes in real
        # time, so little is left by now; the margin covers the network and Exotel's buffer.
        if self.events.caller_left:
            return
        remaining = self._playout.speech_remaining(time.monotonic()) + PLAYOUT_MARGIN_SECS
        if self._playout.speech_ends_at == 0.0 or remaining <= 0:
            return
        wait = min(remaining, MAX_FAREWELL_WAIT_SECS)
        logger.debug(f"Waiting {wait:.2f} s for Exotel to play the last words before closing")
        await asyncio.sleep(wait)

    async def _decode(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "media":
            pcm = base64.b64decode(message["media"]["payload"], validate=True)
            if len(pcm) % 2:
                raise ValueError(f"{len(pcm)} bytes is not whole 16-bit samples")
            if not pcm:
                return None
            if self._wire_rate != self._pipeline_rate:
                pcm = await self._input_resampler.resample(
                    pcm, self._wire_rate, self._pipeline_rate
                )
            return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=self._pipeline_rate)
        if event == "dtmf":
            return InputDTMFFrame(KeypadEntry(str(message["dtmf"]["digit"])))
        if event == "mark":
            self.marks_played.append(str(message["mark"]["name"]))
            return None
        if event == "stop":
            reason = (message.get("stop") or {}).get("reason", "unknown")
            logger.info(f"Exotel stopped the stream ({reason})")
            self.events.stopped()
            return None
        if event not in QUIET_EVENTS:
            logger.warning(f"Ignoring unknown Exotel event {event!r}")
        return None
