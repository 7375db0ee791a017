"""Dial-out placers: one per provider, each turning a `POST /dialout` into that provider's call.

    placer = placers_for(settings)["exotel"]
    call = placer.prepare(request, "https://bot.example.com", attempt_id)  # or CallNotPlaced
    placed = await call.send()  # or CallNotPlaced

`prepare` checks what only its provider limits (caller id, field support,
sizes) and builds the request, sending nothing, so the attempt can be recorded
before the provider is asked; `send` asks. Every failure is `CallNotPlaced`.
The status callback URL names the attempt, so a callback finds the attempt's
record even when the create answer was lost. A third provider is one more
class with `name`, `prepare` and `aclose`, listed in `PLACERS`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol
from urllib.parse import urlencode

from loguru import logger

import twiml
from config.recording import RecordingMode
from dialout import exotel as exotel_api
from dialout import twilio as twilio_api
from dialout.placing import CallNotPlaced, PlacedCall
from dialout.request import DialoutRequest
from dialout.twilio import TwilioCalls
from recording.twilio import recording_fields
from settings import Settings

TWIML_LIMIT = 4000  # Twilio's limit on inline TwiML (error 32018)
MAX_RING_SECS = 600  # the longest `timeout` a dial-out may ring
EXOTEL_STATUS_PATH = "/exotel/status"


@dataclass(frozen=True)
class PreparedCall:
    """A call ready to be placed: its caller id, and the request that places it.

    Attributes:
        from_number: The caller id it rings with.
        send: Asks the provider; raises `CallNotPlaced` when the call was not placed.
    """

    from_number: str
    send: Callable[[], Awaitable[PlacedCall]]


class Placer(Protocol):
    """Places calls with one provider."""

    name: ClassVar[str]

    def prepare(self, request: DialoutRequest, base: str, attempt_id: str) -> PreparedCall:
        """Build the request that calls `request.to` and streams the answered call to `base`/ws.

        Args:
            request: What `POST /dialout` asked for.
            base: `PUBLIC_URL`.
            attempt_id: The attempt's id, for the URLs the provider reports back to.

        Raises:
            CallNotPlaced: The request does not fit the provider (nothing is sent).
        """
        ...

    async def aclose(self) -> None:
        """Release connections held open between calls."""
        ...


class TwilioPlacer:
    """Twilio: inline TwiML that connects the answered call to /ws."""

    name: ClassVar[str] = "twilio"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._calls = TwilioCalls(settings, timeout=settings.dialout_request_timeout)

    def prepare(self, request: DialoutRequest, base: str, attempt_id: str) -> PreparedCall:
        from_number = request.from_ or self._settings.twilio_phone_number
        if not from_number:
            raise CallNotPlaced(
                422, "No caller id: give 'from' or set TWILIO_PHONE_NUMBER on the server"
            )
        parameters = {
            **request.parameters,
            "direction": "outbound",
            "from_number": from_number,
            "to_number": request.to,
        }
        # Signed for the attempt: Twilio names the call only in its answer. The token
        # must outlast the ringing (a replay is bound to this call by the attempt anyway).
        ttl = self._settings.stream_token_ttl + MAX_RING_SECS
        document = twiml.stream_to_bot(
            base, parameters, self._settings, attempt_id=attempt_id, ttl=ttl
        )
        if len(document) > TWIML_LIMIT:
            raise CallNotPlaced(
                422,
                f"The call's TwiML would be {len(document)} characters, over Twilio's "
                f"{TWIML_LIMIT}: shorten the parameters",
            )
        # RECORDING=twilio records every call from its creation, unless the request says not to.
        recorded = self._settings.recording is RecordingMode.TWILIO and request.record is not False
        status_callback = f"{base}/status?{urlencode({'attempt': attempt_id})}"

        async def send() -> PlacedCall:
            try:
                return await self._calls.place(
                    to=request.to,
                    from_number=from_number,
                    twiml=document,
                    status_callback=status_callback,
                    machine_detection=request.machine_detection,
                    ring_timeout=request.timeout,
                    time_limit=request.time_limit,
                    record=True if recorded else request.record,
                    recording=recording_fields(base),
                )
            except CallNotPlaced as e:
                # A caller id the request chose is the request's fault (the default is the
                # server's).
                if request.from_ and e.twilio_code in twilio_api.FROM_NUMBER_CODES:
                    detail = f"Twilio cannot call from {request.from_}: {e.detail}"
                    raise CallNotPlaced(422, detail, twilio_code=e.twilio_code) from None
                raise

        return PreparedCall(from_number, send)

    async def aclose(self) -> None:
        await self._calls.aclose()


def exotel_status_token(settings: Settings) -> str:
    """The secret that Exotel's status callbacks carry back in their path.

    Exotel signs nothing, so the callback URL itself is the credential. It is
    derived from `DIALOUT_API_KEY`, so it survives restarts and changes with the key.
    """
    key = settings.dialout_api_key.get_secret_value() if settings.dialout_api_key else ""
    return hmac.new(key.encode(), b"exotel-status-callback", hashlib.sha256).hexdigest()[:32]


class ExotelPlacer:
    """Exotel: Connect Voice AI dials and streams the answered call to /ws, no flow needed."""

    name: ClassVar[str] = "exotel"
    # Twilio-only request fields that Exotel's Connect Voice AI has no equivalent for.
    UNSUPPORTED: ClassVar[tuple[str, ...]] = ("machine_detection", "timeout")

    def __init__(self, settings: Settings, *, timeout: float | None = None) -> None:
        """Prepare the placer.

        Args:
            settings: Exotel's credentials, caller id and API host.
            timeout: Seconds to wait for Exotel's answer to one request
                (`DIALOUT_REQUEST_TIMEOUT` when None).
        """
        self._settings = settings
        self._client = exotel_api.ExotelClient(
            settings, timeout=timeout or settings.dialout_request_timeout
        )

    def prepare(self, request: DialoutRequest, base: str, attempt_id: str) -> PreparedCall:
        unsupported = [name for name in self.UNSUPPORTED if getattr(request, name) is not None]
        if unsupported:
            raise CallNotPlaced(422, f"Exotel's Connect Voice AI has no {' or '.join(unsupported)}")
        # The parameters ride on the stream URL (they come back in `start`) and in
        # CustomField (Exotel's call record and terminal status callback).
        custom_field = urlencode(request.parameters) or None
        if custom_field is not None and len(custom_field) > exotel_api.MAX_CUSTOM_FIELD:
            raise CallNotPlaced(
                422,
                f"The parameters are {len(custom_field)} characters URL-encoded, over "
                f"Exotel's CustomField limit of {exotel_api.MAX_CUSTOM_FIELD}",
            )
        try:
            stream = exotel_api.stream_url(base, request.parameters, self._settings)
        except ValueError as e:
            raise CallNotPlaced(422, str(e)) from None
        token = exotel_status_token(self._settings)
        status_callback = f"{base}{EXOTEL_STATUS_PATH}/{token}?{urlencode({'attempt': attempt_id})}"
        from_number = request.from_ or str(self._settings.exotel_caller_id)

        async def send() -> PlacedCall:
            try:
                call = await self._client.connect(
                    request.to,
                    stream,
                    custom_field=custom_field,
                    status_callback=status_callback,
                    time_limit=request.time_limit,
                    caller_id=request.from_,
                    record=request.record,
                )
            except exotel_api.ExotelError as e:
                answer = exotel_api.refusal(e)
                logger.warning(f"Exotel did not place the call: {e}")
                raise answer from None
            return PlacedCall(call_sid=call.sid, status=call.status, from_number=from_number)

        if len(stream) > exotel_api.MAX_STREAM_URL:  # checked before anything is sent
            raise CallNotPlaced(422, f"The stream URL is over {exotel_api.MAX_STREAM_URL} chars")
        return PreparedCall(from_number, send)

    async def aclose(self) -> None:
        pass  # the Exotel client opens a session per request


PLACERS: dict[str, Callable[[Settings], Placer]] = {
    TwilioPlacer.name: TwilioPlacer,
    ExotelPlacer.name: ExotelPlacer,
}


def placers_for(settings: Settings) -> dict[str, Placer]:
    """One placer per provider, by name, for the server's settings."""
    return {name: make(settings) for name, make in PLACERS.items()}
