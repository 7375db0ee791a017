"""Exotel's side of a call: the Voicebot applet's message format, and ``ExotelCall``."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from simulator.audio import FRAME_SECONDS, SAMPLE_RATE, is_audible, resample_pcm
from simulator.call import SimulatedCall
from simulator.wire import ServerMessage, WireFormat

# Exotel's rules for the bot's audio: anything else plays with gaps.
EXOTEL_CHUNK_ALIGN = 320
EXOTEL_MIN_CHUNK = 3200
EXOTEL_MAX_CHUNK = 100_000


class ExotelMediaStream(WireFormat):
    """The message format of Exotel's Voicebot applet, for one stream.

    Snake_case fields and raw 16-bit PCM at the applet's sample rate; the
    caller's side is still 8 kHz PCM16, resampled at the edge. A ``media``
    chunk from the server that breaks Exotel's size rules is a protocol error.
    """

    STREAM_SID_FIELD = "stream_sid"

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
        self.sample_rate = sample_rate
        self.from_number = from_number
        self.to_number = to_number
        super().__init__(account_sid=account_sid, call_sid=call_sid, stream_sid=stream_sid)

    def encode_frames(self, pcm8k: bytes) -> list[str]:
        """Split PCM into 20 ms media payloads at the stream's rate, padding the last."""
        pcm = resample_pcm(pcm8k, SAMPLE_RATE, self.sample_rate)
        frame = int(self.sample_rate * FRAME_SECONDS) * 2
        pcm += b"\0" * (-len(pcm) % frame)
        return [
            base64.b64encode(pcm[i : i + frame]).decode("ascii") for i in range(0, len(pcm), frame)
        ]

    def decode_audio(self, payload: bytes) -> tuple[bytes, str | None]:
        """Raw PCM16 at the stream's rate, in chunks of the sizes Exotel plays smoothly."""
        error = None
        if not (
            len(payload) % EXOTEL_CHUNK_ALIGN == 0
            and EXOTEL_MIN_CHUNK <= len(payload) <= EXOTEL_MAX_CHUNK
        ):
            error = (
                f"media: a {len(payload)}-byte chunk; Exotel needs multiples of "
                f"{EXOTEL_CHUNK_ALIGN} bytes from {EXOTEL_MIN_CHUNK} to {EXOTEL_MAX_CHUNK}"
            )
        whole = payload[: len(payload) - len(payload) % 2]
        return resample_pcm(whole, self.sample_rate, SAMPLE_RATE), error

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
        queued = self.earpiece.queued_audio()
        held = (message.audio for _, message in self._held)
        return any(is_audible(audio) for audio in (*queued, *held))

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
