"""Exotel's side of a Voicebot call, for tests: the applet's websocket on a real-time line.

It connects to /ws the way Exotel's Voicebot applet does (Basic credentials from
the URL's userinfo, `connected` then a snake_case `start`), streams the caller's
PCM16 on a 20 ms clock, and plays the bot's audio through a real-time playout
buffer, echoing marks as they are reached; `line_delay` holds each message back
as a network and jitter buffer would. What was played before the socket closed
is `heard`; every outbound chunk's size is kept to check Exotel's rules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import deque
from types import TracebackType
from typing import Any, Self

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FRAME_SECONDS = 0.02
AUDIBLE_PEAK = 64


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample PCM16 mono between rates."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    out = soxr.resample(samples, from_rate, to_rate)
    return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def audible(pcm: bytes) -> bool:
    """Whether PCM16 holds anything louder than line noise."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return samples.size > 0 and int(np.abs(samples.astype(np.int32)).max()) > AUDIBLE_PEAK


class ExotelLine:
    """One call from Exotel's Voicebot applet to a Switchboard server."""

    def __init__(
        self,
        ws_url: str,
        *,
        sample_rate: int = 8000,
        custom_parameters: dict[str, str] | str | None = None,
        from_number: str = "+919876543210",
        to_number: str = "+918047491899",
        line_delay: float = 0.0,
    ) -> None:
        self.ws_url = ws_url
        self.sample_rate = sample_rate
        self.custom_parameters = custom_parameters if custom_parameters is not None else {}
        self.from_number = from_number
        self.to_number = to_number
        self.line_delay = line_delay
        self.stream_sid = secrets.token_hex(16)
        self.call_sid = secrets.token_hex(16)
        self.account_sid = "switchboardtest1"
        self.frame_bytes = int(sample_rate * FRAME_SECONDS) * 2

        self.chunk_sizes: list[int] = []
        self.received: list[dict[str, Any]] = []
        self.clears = 0
        self.marks_echoed: list[str] = []
        self.heard = bytearray()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by: str | None = None
        self.first_audio_at: float | None = None
        self.audio_times: list[float] = []

        self._ws: ClientConnection | None = None
        self._outgoing: deque[tuple[bytes, asyncio.Future[float] | None]] = deque()
        # What the server sent, each item playable once the line delay has passed.
        self._playout: deque[tuple[float, bytes | str]] = deque()
        self._sequence = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        await self.hang_up()

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def start_message(self) -> dict[str, Any]:
        """The `start` Exotel sends, as its protocol page documents it."""
        return {
            "event": "start",
            "sequence_number": self._next(),
            "stream_sid": self.stream_sid,
            "start": {
                "stream_sid": self.stream_sid,
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "from": self.from_number,
                "to": self.to_number,
                "custom_parameters": self.custom_parameters,
                "media_format": {
                    "encoding": "raw",
                    "sample_rate": str(self.sample_rate),
                    "bit_rate": "16",
                },
            },
        }

    async def connect(self) -> None:
        """Open the websocket and send `connected` and `start`; the server may close at once."""
        self._ws = await connect(self.ws_url, compression=None, max_size=None, proxy=None)
        try:
            await self._send({"event": "connected"})
            await self._send(self.start_message())
        except ConnectionClosed:
            self._finish()
            return
        self._tasks = [
            asyncio.create_task(self._receive(self._ws)),
            asyncio.create_task(self._clock()),
        ]

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message))

    async def say(self, pcm8k: bytes) -> float:
        """Speak 8 kHz PCM16 after anything queued; return when its last frame was sent."""
        pcm = resample(pcm8k, 8000, self.sample_rate)
        pcm += b"\0" * (-len(pcm) % self.frame_bytes)
        frames = [pcm[i : i + self.frame_bytes] for i in range(0, len(pcm), self.frame_bytes)]
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        for index, frame in enumerate(frames):
            self._outgoing.append((frame, done if index == len(frames) - 1 else None))
        return await done

    async def press(self, digits: str) -> None:
        """Press keypad keys, one `dtmf` message each."""
        for digit in digits:
            await self._send(
                {
                    "event": "dtmf",
                    "sequence_number": self._next(),
                    "stream_sid": self.stream_sid,
                    "dtmf": {"digit": digit, "duration": "100"},
                }
            )
            await asyncio.sleep(0.1)

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything, e.g. a malformed frame."""
        assert self._ws is not None
        await self._ws.send(data)

    async def hang_up(self) -> None:
        """Send `stop` (caller hung up) and close; safe to call twice."""
        if self._ws is not None and not self._closed.is_set():
            self.closed_by = "caller"
            try:
                await self._send(
                    {
                        "event": "stop",
                        "sequence_number": self._next(),
                        "stream_sid": self.stream_sid,
                        "stop": {
                            "call_sid": self.call_sid,
                            "account_sid": self.account_sid,
                            "reason": "callended",
                        },
                    }
                )
            except ConnectionClosed:
                self.closed_by = "server"
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._finish()

    async def _clock(self) -> None:
        silence = b"\0" * self.frame_bytes
        began = time.monotonic()
        tick = 0
        try:
            while True:
                frame, done = self._outgoing.popleft() if self._outgoing else (silence, None)
                payload = base64.b64encode(frame).decode("ascii")
                await self._send(
                    {
                        "event": "media",
                        "sequence_number": self._next(),
                        "stream_sid": self.stream_sid,
                        "media": {
                            "chunk": str(tick + 1),
                            "timestamp": str(tick * 20),
                            "payload": payload,
                        },
                    }
                )
                if done is not None and not done.done():
                    done.set_result(time.monotonic())
                await self._play(self.frame_bytes)
                tick += 1
                await asyncio.sleep(max(0.0, began + tick * FRAME_SECONDS - time.monotonic()))
        except ConnectionClosed:
            pass

    async def _play(self, budget: int) -> None:
        while self._playout and self._playout[0][0] <= time.monotonic():
            ready_at, head = self._playout[0]
            if isinstance(head, str):
                self._playout.popleft()
                self.marks_echoed.append(head)
                await self._send(
                    {
                        "event": "mark",
                        "sequence_number": self._next(),
                        "stream_sid": self.stream_sid,
                        "mark": {"name": head},
                    }
                )
                continue
            if not budget:
                return
            played, rest = head[:budget], head[budget:]
            self.heard += resample(played, self.sample_rate, 8000)
            budget -= len(played)
            if rest:
                self._playout[0] = (ready_at, rest)
            else:
                self._playout.popleft()

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.received.append(message)
                event = message.get("event")
                ready_at = time.monotonic() + self.line_delay
                assert message.get("stream_sid") == self.stream_sid, message
                if event == "media":
                    pcm = base64.b64decode(message["media"]["payload"], validate=True)
                    self.chunk_sizes.append(len(pcm))
                    if audible(pcm):
                        now = time.monotonic()
                        self.audio_times.append(now)
                        self.first_audio_at = self.first_audio_at or now
                    self._playout.append((ready_at, pcm))
                elif event == "mark":
                    self._playout.append((ready_at, message["mark"]["name"]))
                elif event == "clear":
                    self.clears += 1
                    marks = [item for item in self._playout if isinstance(item[1], str)]
                    self._playout = deque(marks)
        except ConnectionClosed:
            pass
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._ws is not None:
            self.closed_by = self.closed_by or "server"
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for _, done in self._outgoing:
            if done is not None and not done.done():
                done.set_exception(ConnectionError("the call ended"))

    async def wait_for_bot_audio(self, *, after: float = 0.0, timeout: float = 15) -> float:  # noqa: ASYNC109
        """Wait for audible bot audio arriving after `after`; return its arrival time."""
        async with asyncio.timeout(timeout):
            while True:
                later = [t for t in self.audio_times if t > after]
                if later:
                    return later[0]
                if self._closed.is_set():
                    raise ConnectionError("the call ended before the bot spoke")
                await asyncio.sleep(0.02)

    async def wait_for_bot_quiet(self, quiet: float = 1.0, timeout: float = 20) -> None:  # noqa: ASYNC109
        """Wait until no bot audio arrived for `quiet` seconds and all of it was played."""
        async with asyncio.timeout(timeout):
            while not self._closed.is_set():
                last = max(self.audio_times, default=0.0)
                unplayed = any(isinstance(item, bytes) for _, item in self._playout)
                if time.monotonic() - last >= quiet and not unplayed:
                    return
                await asyncio.sleep(0.05)

    async def wait_closed(self, timeout: float = 20) -> None:  # noqa: ASYNC109
        """Wait until either side closed the websocket."""
        async with asyncio.timeout(timeout):
            await self._closed.wait()

    @property
    def unplayed_bytes(self) -> int:
        """Bot audio still in the playout buffer (dropped if the socket closes now)."""
        return sum(len(item) for _, item in self._playout if isinstance(item, bytes))

    @property
    def unplayed_speech(self) -> bool:
        """Whether audible bot audio is still waiting to be played."""
        return any(isinstance(item, bytes) and audible(item) for _, item in self._playout)
