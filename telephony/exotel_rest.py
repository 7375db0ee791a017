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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from loguru import logger

from settings import Settings

# Exotel's documented limits for Calls/connect and the applet's custom parameters.
MAX_STREAM_URL = 600
MAX_CUSTOM_FIELD = 128
MAX_CUSTOM_PARAMETERS = 3
MAX_CUSTOM_PARAMETERS_CHARS = 256
STATUS_EVENTS = ("answered", "terminal")
TIMEOUT = aiohttp.ClientTimeout(total=15)


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
        password = settings.exotel_ws_password.get_secret_value()
        netloc = f"{settings.exotel_ws_username}:{password}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/") + "/ws", query, ""))


class ExotelClient:
    """Exotel's Calls API for one account, from the settings."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession | None = None) -> None:
        """Prepare a client; nothing is sent until `connect`.

        Args:
            settings: `EXOTEL_API_KEY`, `EXOTEL_API_TOKEN`, `EXOTEL_ACCOUNT_SID`,
                `EXOTEL_CALLER_ID` and `EXOTEL_API_BASE_URL`.
            session: A session to reuse; one per request when None.
        """
        self._settings = settings
        self._session = session

    async def connect(
        self,
        to: str,
        stream: str,
        *,
        custom_field: str | None = None,
        status_callback: str | None = None,
        time_limit: int | None = None,
    ) -> ExotelCall:
        """Dial `to` and, once answered, stream the call to `stream` (Connect Voice AI).

        Args:
            to: The number to dial, E.164.
            stream: The bot's websocket URL (see `stream_url`).
            custom_field: Opaque data kept on Exotel's call record (at most 128 characters).
            status_callback: Where Exotel POSTs the call's `answered` and `terminal` status.
            time_limit: Longest call, in seconds.

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
            ("CallerId", str(settings.exotel_caller_id)),
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
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                return await self._send(session, url, form, auth)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ExotelApiError(0, f"Exotel could not be reached: {e!r}") from e

    @staticmethod
    async def _send(
        session: aiohttp.ClientSession,
        url: str,
        form: list[tuple[str, str]],
        auth: aiohttp.BasicAuth,
    ) -> dict[str, Any]:
        async with session.post(url, data=form, auth=auth, timeout=TIMEOUT) as response:
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
