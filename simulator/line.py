"""The line of a simulated call: its media stream, the caller's clock, and what arrives.

The caller's frames go out on a real-time 20 ms clock; the bot's media and
marks go to the `Earpiece`, which plays them as Twilio does; marks are echoed
once played. `SimulatedCall` builds the caller's behaviour on top.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simulator.audio import FRAME_SECONDS
from simulator.earpiece import Earpiece
from simulator.errors import CallEnded, StreamRejected
from simulator.wire import ServerMessage, WireFormat


@dataclass
class _Frame:
    payload: str
    sent: asyncio.Future[float] | None = None
    ends_utterance: bool = False
    hiccup: float = 0.0  # no audio: a mark that the network holds what follows this long


class MediaLine:
    """One media stream's websocket, driven by the caller's 20 ms clock.

    Attributes:
        received: Every message from the server, with its monotonic arrival time.
        protocol_errors: What was wrong with messages the server sent.
        clears: How many ``clear`` messages arrived.
        marks_echoed: Mark names sent back, in order.
        close_code: The websocket close code, once closed.
        close_reason: The websocket close reason, once closed.
        closed_by: ``"caller"`` or ``"server"``: who ended the call.
        start_sent_at: Monotonic time the ``start`` message was sent.
        utterance_ends: Monotonic time the last frame of each utterance was sent.
        earpiece: What the caller hears (the bot's audio, played out as Twilio does).
    """

    user_agent = "Twilio.TmeWs/1.0"

    def __init__(self, wire: WireFormat) -> None:
        """Prepare a line speaking `wire`'s format; nothing connects yet."""
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.protocol_errors: list[str] = []
        self.clears = 0
        self.marks_echoed: list[str] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by: str | None = None
        self.start_sent_at = math.nan
        self.earpiece = Earpiece()
        self.utterance_ends: list[float] = []
        self._wire = wire
        self._ws: ClientConnection | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._receiver_task: asyncio.Task[None] | None = None
        self._outgoing: deque[_Frame] = deque()
        self._changed = asyncio.Event()  # replaced on every change; see _notify
        self._closed = asyncio.Event()

    async def _open(self, url: str, headers: dict[str, str], parameters: dict[str, str]) -> None:
        """Connect to `url`, send ``connected`` and ``start``, and start the clock.

        Raises:
            StreamRejected: The websocket upgrade was refused.
        """
        try:
            self._ws = await connect(
                url,
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
            await self._send(self._wire.start(parameters))
        except ConnectionClosed:  # refused after the upgrade, e.g. 1008 for a bad signature
            self._finish()
            return
        self.start_sent_at = time.monotonic()
        self._receiver_task = asyncio.create_task(self._receive(self._ws))
        self._clock_task = asyncio.create_task(self._run_clock())

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise CallEnded("the call is not connected")
        await self._ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything on the stream's websocket, e.g. malformed messages."""
        if self._ws is None:
            raise CallEnded("the call is not connected")
        await self._ws.send(data)

    async def _queue(self, payloads: list[str], *, ends_utterance: bool) -> float:
        if self._clock_task is None or self._closed.is_set():
            raise CallEnded("the call is not connected")
        frames = [_Frame(payload) for payload in payloads]
        sent = asyncio.get_running_loop().create_future()
        frames[-1].sent, frames[-1].ends_utterance = sent, ends_utterance
        self._outgoing.extend(frames)
        return await sent

    def hiccup(self, seconds: float) -> None:
        """After anything already queued, the network holds the caller's audio.

        For `seconds` nothing reaches the server; then everything held arrives
        at once, as TCP delivers after a stall. The caller's clock goes on.
        """
        if self._clock_task is None or self._closed.is_set():
            raise CallEnded("the call is not connected")
        self._outgoing.append(_Frame("", hiccup=seconds))

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

    async def _run_clock(self) -> None:
        # Frames go out on an absolute 20 ms grid, as from a phone line, so a
        # slow iteration does not accumulate as drift.
        silence = _Frame(self._wire.silence_frame)
        chunk = 0
        held: list[dict[str, Any]] = []
        held_until = 0.0
        try:
            while True:
                while self._outgoing and self._outgoing[0].hiccup:
                    held_until = time.monotonic() + self._outgoing.popleft().hiccup
                frame = self._outgoing.popleft() if self._outgoing else silence
                media = self._wire.media(frame.payload, chunk=chunk + 1, timestamp_ms=chunk * 20)
                held.append(media)
                if time.monotonic() >= held_until:
                    for message in held:
                        await self._send(message)
                    held.clear()
                chunk += 1
                if frame.sent is not None:
                    sent_at = time.monotonic()
                    if frame.ends_utterance:
                        self.utterance_ends.append(sent_at)
                    if not frame.sent.done():
                        frame.sent.set_result(sent_at)
                self.earpiece.play_frame(time.monotonic())
                next_at = self.start_sent_at + chunk * FRAME_SECONDS
                if (missed := int((time.monotonic() - next_at) / FRAME_SECONDS)) > 0:
                    # This process stalled (a test transcribing on the event loop, say).
                    # A phone line does not send the time it missed in a burst later: a
                    # burst would cram speech queued meanwhile into no time at all.
                    for skipped in range(missed):
                        self.earpiece.play_frame(next_at + skipped * FRAME_SECONDS)
                    chunk += missed
                    next_at += missed * FRAME_SECONDS
                await self._echo_reached_marks()
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        except ConnectionClosed:
            pass

    async def _echo_reached_marks(self) -> None:
        for name in self.earpiece.reached_marks():
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
            self.earpiece.media(arrived, message.audio)
        elif message.event == "mark" and message.mark is not None:
            self.earpiece.mark(message.mark)
            await self._echo_reached_marks()
        elif message.event == "clear":
            self.clears += 1
            for name in self.earpiece.clear(arrived):
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

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(self, predicate: Callable[[], bool], seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while not predicate() and not self._closed.is_set():
                await self._changed.wait()

    async def wait_closed(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until the stream is closed, by either side.

        Raises:
            TimeoutError: It stayed open.
        """
        async with asyncio.timeout(timeout):
            await self._closed.wait()
