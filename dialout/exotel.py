"""Exotel's REST API for dial-out: Connect Voice AI places a call that streams to /ws.

One request dials the number and, once answered, opens a bidirectional
Voicebot stream to `StreamUrl`; no App Bazaar flow is involved.

    client = ExotelClient(settings)
    call = await client.connect(
        "+919876543210", stream_url(public_base, {"greeting": "Hi"}, settings)
    )

ExotelError
├── ExotelNotConfigured  the settings lack the API key, token, account or caller id
└── ExotelApiError       Exotel answered with an error status (or was unreachable)
    ├── ExotelUnreachable  no connection: nothing reached Exotel
    └── ExotelTimeout      no answer in time: the call may have been placed

`refusal` turns any of them into the HTTP answer dial-out gives (`CallNotPlaced`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import aiohttp
from loguru import logger

from dialout.placing import (
    MAYBE_PLACED,
    RATE_LIMITED_RETRY_SECS,
    UNREACHABLE_RETRY_SECS,
    CallNotPlaced,
)
from settings import Settings

# Exotel's documented limits for Calls/connect and the applet's custom parameters.
MAX_STREAM_URL = 600
MAX_CUSTOM_FIELD = 128
MAX_CUSTOM_PARAMETERS = 3
MAX_CUSTOM_PARAMETERS_CHARS = 256
STATUS_EVENTS = ("answered", "terminal")
REQUEST_TIMEOUT_SECS = 15.0


class ExotelError(Exception):
    """Base class: the call could not be placed through Exotel."""


class ExotelNotConfigured(ExotelError):
    """The settings lack what Exotel's API needs (key, token, account SID, caller id)."""


class ExotelApiError(ExotelError):
    """Exotel refused the request, or could not be reached.

    Attributes:
        status: The HTTP status Exotel answered, or 0 when it could not be reached.
        message: Exotel's `RestException.Message`, or the transport error.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Exotel answered HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


class ExotelUnreachable(ExotelApiError):
    """No connection to Exotel could be made: nothing was sent, so nothing was placed."""


class ExotelTimeout(ExotelApiError):
    """Exotel did not answer in time: the call may have been placed anyway."""


@dataclass(frozen=True)
class ExotelCall:
    """A call Exotel accepted: its `Sid` and status at creation (`queued`, `in-progress`)."""

    sid: str
    status: str


def stream_url(public_base: str, parameters: dict[str, str], settings: Settings) -> str:
    """The Voicebot stream URL for a call this server places.

    `direction=outbound` rides along with the caller's own parameters as one of
    Exotel's (at most three) custom parameters, and comes back in `start`.
    The Basic credentials Exotel must present on /ws go in the URL's userinfo.

    Args:
        public_base: Where Exotel reaches this server, e.g. `https://bot.example.com`.
        parameters: Custom parameters for the bot (`greeting`, `system_prompt`, ...).
        settings: Holds `EXOTEL_WS_USERNAME`/`EXOTEL_WS_PASSWORD`, if set.

    Raises:
        ValueError: More parameters, or longer ones, than Exotel carries.
    """
    custom = {"direction": "outbound", **parameters}
    query = urlencode(custom)
    if len(custom) > MAX_CUSTOM_PARAMETERS or len(query) > MAX_CUSTOM_PARAMETERS_CHARS:
        raise ValueError(
            f"Exotel carries at most {MAX_CUSTOM_PARAMETERS - 1} parameters besides the "
            f"direction, {MAX_CUSTOM_PARAMETERS_CHARS} characters in all"
        )
    parts = urlsplit(public_base)
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    netloc = parts.netloc
    if settings.exotel_ws_username is not None and settings.exotel_ws_password is not None:
        # Percent-encoded: a password with '@', ':' or '/' must not break the URL.
        user = quote(settings.exotel_ws_username, safe="")
        password = quote(settings.exotel_ws_password.get_secret_value(), safe="")
        netloc = f"{user}:{password}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/") + "/ws", query, ""))


class ExotelClient:
    """Exotel's Calls API for one account, from the settings."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT_SECS,
    ) -> None:
        """Prepare a client; nothing is sent until `connect`.

        Args:
            settings: `EXOTEL_API_KEY`, `EXOTEL_API_TOKEN`, `EXOTEL_ACCOUNT_SID`,
                `EXOTEL_CALLER_ID` and `EXOTEL_API_BASE_URL`.
            session: A session to reuse; one per request when None.
            timeout: Seconds to wait for Exotel's answer to one request.
        """
        self._settings = settings
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def connect(
        self,
        to: str,
        stream: str,
        *,
        custom_field: str | None = None,
        status_callback: str | None = None,
        time_limit: int | None = None,
        caller_id: str | None = None,
        record: bool | None = None,
    ) -> ExotelCall:
        """Dial `to` and, once answered, stream the call to `stream` (Connect Voice AI).

        Args:
            to: The number to dial, E.164.
            stream: The bot's websocket URL (see `stream_url`).
            custom_field: Opaque data kept on Exotel's call record (at most 128 characters).
            status_callback: Where Exotel POSTs the call's `answered` and `terminal` status.
            time_limit: Longest call, in seconds.
            caller_id: The ExoPhone to call from; `EXOTEL_CALLER_ID` when None.
            record: Whether Exotel records the call.

        Raises:
            ExotelNotConfigured: The settings lack the key, token, account or caller id.
            ValueError: A field longer than Exotel accepts.
            ExotelApiError: Exotel refused the request or could not be reached.
        """
        settings = self._settings
        if not settings.can_dial_exotel:
            raise ExotelNotConfigured(
                "Exotel dial-out needs EXOTEL_API_KEY, EXOTEL_API_TOKEN, "
                "EXOTEL_ACCOUNT_SID and EXOTEL_CALLER_ID"
            )
        if not stream.startswith(("ws://", "wss://")) or len(stream) > MAX_STREAM_URL:
            raise ValueError(f"StreamUrl must be ws:// or wss://, at most {MAX_STREAM_URL} chars")
        if custom_field is not None and len(custom_field) > MAX_CUSTOM_FIELD:
            raise ValueError(f"CustomField is at most {MAX_CUSTOM_FIELD} characters")
        form: list[tuple[str, str]] = [
            ("From", to),
            ("CallerId", caller_id or str(settings.exotel_caller_id)),
            ("StreamUrl", stream),
            ("StreamType", "bidirectional"),
        ]
        if custom_field is not None:
            form.append(("CustomField", custom_field))
        if status_callback is not None:
            form.append(("StatusCallback", status_callback))
            form += [("StatusCallbackEvents[]", event) for event in STATUS_EVENTS]
        if time_limit is not None:
            form.append(("TimeLimit", str(time_limit)))
        if record is not None:
            form.append(("Record", "true" if record else "false"))
        body = await self._post(self._calls_url("connect.json"), form)
        call = body.get("Call") if isinstance(body.get("Call"), dict) else None
        if call is None or not call.get("Sid"):
            raise ExotelApiError(502, f"no Call Sid in Exotel's answer: {str(body)[:200]}")
        logger.info(f"Exotel is dialling {to} (call {call['Sid']})")
        return ExotelCall(sid=str(call["Sid"]), status=str(call.get("Status", "queued")))

    def _calls_url(self, leaf: str) -> str:
        base = str(self._settings.exotel_api_base_url).rstrip("/")
        return f"{base}/v1/Accounts/{self._settings.exotel_account_sid}/Calls/{leaf}"

    async def _post(self, url: str, form: list[tuple[str, str]]) -> dict[str, Any]:
        token = self._settings.exotel_api_token
        auth = aiohttp.BasicAuth(
            str(self._settings.exotel_api_key), token.get_secret_value() if token else ""
        )
        try:
            if self._session is not None:
                return await self._send(self._session, url, form, auth)
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                return await self._send(session, url, form, auth)
        except aiohttp.ClientConnectorError as e:
            raise ExotelUnreachable(0, f"Exotel could not be reached: {e!r}") from e
        except TimeoutError as e:
            total = self._timeout.total
            raise ExotelTimeout(0, f"Exotel did not answer within {total:g} s") from e
        except aiohttp.ClientError as e:
            raise ExotelApiError(0, f"The connection to Exotel failed mid-request: {e!r}") from e

    async def _send(
        self,
        session: aiohttp.ClientSession,
        url: str,
        form: list[tuple[str, str]],
        auth: aiohttp.BasicAuth,
    ) -> dict[str, Any]:
        async with session.post(url, data=form, auth=auth, timeout=self._timeout) as response:
            text = await response.text()
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            if response.status >= 400:
                raise ExotelApiError(response.status, _error_message(body, text))
            if not isinstance(body, dict):
                raise ExotelApiError(502, f"Exotel answered with no JSON object: {text[:200]}")
            return body


def _error_message(body: object, text: str) -> str:
    if isinstance(body, dict):
        exception = body.get("RestException")
        if isinstance(exception, dict) and exception.get("Message"):
            return str(exception["Message"])
    return text[:200] or "no details"


def refusal(exc: ExotelError) -> CallNotPlaced:
    """The HTTP answer dial-out gives when Exotel did not place the call.

    Exotel's `RestException` has an HTTP status and a message, no stable code;
    a 400 that names a number is the callee's number at fault.

    Args:
        exc: What `ExotelClient.connect` raised.
    """
    if isinstance(exc, ExotelNotConfigured):
        return CallNotPlaced(503, f"{exc} on the server")
    if not isinstance(exc, ExotelApiError):
        return CallNotPlaced(502, f"Exotel did not place the call: {exc}")
    if isinstance(exc, ExotelUnreachable):
        return CallNotPlaced(
            503, "Exotel cannot be reached from this server", retry_after=UNREACHABLE_RETRY_SECS
        )
    if isinstance(exc, ExotelTimeout):
        return CallNotPlaced(504, f"{exc.message}{MAYBE_PLACED}", maybe_placed=True)
    status, message = exc.status, exc.message
    if status == 0:
        return CallNotPlaced(
            502, f"The connection to Exotel failed mid-request{MAYBE_PLACED}", maybe_placed=True
        )
    if status == 400 and "number" in message.lower():
        return CallNotPlaced(
            422, f"Exotel cannot call this number: {message}", exotel_status=status
        )
    if status == 401:
        return CallNotPlaced(
            502,
            "Exotel rejected this server's credentials: EXOTEL_API_KEY, EXOTEL_API_TOKEN "
            "or EXOTEL_ACCOUNT_SID is wrong",
            exotel_status=status,
        )
    if status == 403:
        return CallNotPlaced(
            403, f"The Exotel account may not place this call: {message}", exotel_status=status
        )
    if status == 429:
        return CallNotPlaced(
            503,
            f"Exotel is rate-limiting this account: {message}",
            retry_after=RATE_LIMITED_RETRY_SECS,
            exotel_status=status,
        )
    if status >= 500:
        return CallNotPlaced(
            503,
            f"Exotel is failing ({message})",
            retry_after=UNREACHABLE_RETRY_SECS,
            exotel_status=status,
        )
    return CallNotPlaced(502, f"Exotel refused the call: {message}", exotel_status=status)
