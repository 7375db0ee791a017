"""One simulated phone call: the caller's clock, the bot's playout, and waiting for replies.

The caller's audio goes out on a real-time 20 ms clock and the bot's audio
plays back through a model of Twilio's playout buffer (`Earpiece`), so timings
and marks behave as they would on a phone line.
"""

from __future__ import annotations

import asyncio
import math
import time
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.request_validator import RequestValidator

from simulator.audio import FRAME_SECONDS
from simulator.earpiece import REPLY_GAP
from simulator.errors import CallEnded, WebhookError
from simulator.line import MediaLine
from simulator.twilio import TwilioMediaStream, new_sid, parse_twiml, stream_connect_url
from simulator.wire import WireFormat

__all__ = ["DTMF_SPACING", "REPLY_GAP", "SimulatedCall"]

DTMF_SPACING = 0.1


class SimulatedCall(MediaLine):
    """One phone call placed by a simulated Twilio caller.

    Use as an async context manager; leaving it hangs up. What the line
    records (messages, clears, marks, close code, …) is in `MediaLine`.

    Attributes:
        stream_url: The Stream URL exactly as the TwiML gave it.
        parameters: The Stream's custom parameters.
    """

    wire_format: type[WireFormat] = TwilioMediaStream

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
        super().__init__(
            self.wire_format(
                account_sid=self.account_sid, call_sid=self.call_sid, stream_sid=self.stream_sid
            )
        )

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
        await self.connect_stream(*await self.ring())

    async def ring(self) -> tuple[str, dict[str, str]]:
        """POST the voice webhook only; the Stream URL and parameters its TwiML names.

        Raises:
            WebhookError: The webhook answered an HTTP error.
            CallRejected: The TwiML rejected the call or named no Stream.
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
        return parse_twiml(twiml)

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
        await self._open(stream_connect_url(self.url, stream_url), headers, self.parameters)

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

    async def press(self, digits: str) -> None:
        """Press keys on the keypad: one ``dtmf`` message per digit."""
        for index, digit in enumerate(digits):
            if index:
                await asyncio.sleep(DTMF_SPACING)
            await self._send(self._wire.dtmf(digit))

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
        await self._wait_until(lambda: self.earpiece.first_arrival(since) is not None, timeout)
        arrival = self.earpiece.first_arrival(since)
        if arrival is None:
            raise CallEnded("the call ended before the bot spoke")
        return arrival

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
                idle = time.monotonic() - max(self.earpiece.last_media_at, began)
                unplayed = self.earpiece.unplayed_secs
                if idle >= quiet and not unplayed:
                    return
                await asyncio.sleep(max(quiet - idle, unplayed, FRAME_SECONDS))

    # -- What happened --

    @property
    def heard(self) -> bytes:
        """8 kHz PCM16 the caller heard: bot audio that was played out, back to back."""
        return self.earpiece.heard

    @property
    def first_audio_at(self) -> float | None:
        """Monotonic arrival time of the first audible bot audio."""
        return self.earpiece.first_audio_at

    def reply_starts(self) -> list[float | None]:
        """When the bot's reply to each utterance began, aligned with ``utterance_ends``.

        See `Earpiece.reply_starts`.
        """
        return self.earpiece.reply_starts(self.utterance_ends)

    def reply_latencies(self) -> list[float]:
        """Seconds from the end of each answered utterance to the bot's reply."""
        return [
            start - end
            for start, end in zip(self.reply_starts(), self.utterance_ends, strict=True)
            if start is not None
        ]
