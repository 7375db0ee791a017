"""One simulated phone call: the caller's clock, the bot's playout, and waiting for replies.

The caller's audio goes out on a real-time 20 ms clock and the bot's audio
plays back through a model of Twilio's playout buffer, so timings and marks
behave as they would on a phone line.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simulator.audio import FRAME_BYTES, FRAME_SECONDS, SAMPLE_RATE, is_audible
from simulator.errors import CallEnded, StreamRejected, WebhookError
from simulator.twilio import TwilioMediaStream, new_sid, parse_twiml, stream_connect_url
from simulator.wire import ServerMessage, WireFormat

# A pause in bot audio at least this long separates one reply from the next.
REPLY_GAP = 0.4
DTMF_SPACING = 0.1


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

    wire_format: type[WireFormat] = TwilioMediaStream
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
            if is_audible(message.audio):
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
