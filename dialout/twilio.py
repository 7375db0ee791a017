"""Placing calls through Twilio's REST API, and what to answer when Twilio refuses.

Calls are created with twilio-python's own async client against the host
`telephony.twilio_rest` names (regional, or `TWILIO_API_BASE_URL`). Every failure
becomes `telephony.placing.CallNotPlaced`: the HTTP answer to give (status,
detail, Twilio's code, Retry-After).

A `TwilioRestException` is never turned into text with `str()`: on a terminal it
holds ANSI colour codes. Its `code`, `msg` and `status` are read instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import aiohttp
from loguru import logger
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from dialout.placing import (
    MAYBE_PLACED,
    RATE_LIMITED_RETRY_SECS,
    UNREACHABLE_RETRY_SECS,
    CallNotPlaced,
    PlacedCall,
)
from settings import Settings
from telephony.twilio_rest import rest_client

STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
# Twilio answers a create in well under a second; past this it is unreachable or overloaded.
REQUEST_TIMEOUT_SECS = 15.0

# Twilio error codes (https://www.twilio.com/docs/api/errors) and how each is answered.
BAD_NUMBER_CODES = frozenset({21211, 21214, 21217})  # invalid, unreachable, not a valid number
GEO_PERMISSION_CODE = 21215  # the account may not call that country
# The caller id is invalid, or not one of the account's numbers: the fault of whoever chose it.
FROM_NUMBER_CODES = frozenset({21210, 21212})
BAD_CREDENTIALS_CODE = 20003
RATE_LIMITED_CODE = 20429
TWILIO_MESSAGE_PREFIX = "Unable to create record: "


def refusal(exc: TwilioException) -> CallNotPlaced:
    """The HTTP answer for an error Twilio returned to a Calls create.

    Args:
        exc: What twilio-python raised.
    """
    if isinstance(exc, TwilioRestException):
        code, http_status = exc.code, exc.status
        message = str(exc.msg or "").removeprefix(TWILIO_MESSAGE_PREFIX)
    elif isinstance(exc, TwilioServiceException):
        code, http_status = exc.code, exc.status
        message = exc.detail or exc.title
    else:
        return CallNotPlaced(502, f"Twilio's answer could not be read ({type(exc).__name__})")
    message = message or f"HTTP {http_status}"
    if code in BAD_NUMBER_CODES:
        return CallNotPlaced(422, f"Twilio cannot call this number: {message}", twilio_code=code)
    if code == GEO_PERMISSION_CODE:
        return CallNotPlaced(
            403,
            f"The Twilio account may not call this destination (geo permissions): {message}",
            twilio_code=code,
        )
    if code == BAD_CREDENTIALS_CODE:
        return CallNotPlaced(
            502,
            "Twilio rejected this server's credentials: TWILIO_ACCOUNT_SID or "
            "TWILIO_AUTH_TOKEN is wrong",
            twilio_code=code,
        )
    if code == RATE_LIMITED_CODE or http_status == 429:
        return CallNotPlaced(
            503,
            f"Twilio is rate-limiting this account: {message}",
            twilio_code=code,
            retry_after=RATE_LIMITED_RETRY_SECS,
        )
    if http_status >= 500:
        return CallNotPlaced(
            503,
            f"Twilio is failing ({message})",
            twilio_code=code,
            retry_after=UNREACHABLE_RETRY_SECS,
        )
    return CallNotPlaced(502, f"Twilio refused the call: {message}", twilio_code=code)


class TwilioCalls:
    """Creates outbound calls for one server; the HTTP session is opened on first use."""

    def __init__(self, settings: Settings, *, timeout: float = REQUEST_TIMEOUT_SECS) -> None:
        """Prepare the client; nothing connects yet.

        Args:
            settings: Credentials and `TWILIO_API_BASE_URL`.
            timeout: Seconds to wait for Twilio's answer to one request.
        """
        self._settings = settings
        self._timeout = timeout
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    def _get_client(self) -> Client:
        if self._client is None:
            try:
                self._client, self._http = rest_client(self._settings)
            except ValueError:
                raise CallNotPlaced(
                    503, "Dial-out needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN on the server"
                ) from None
        return self._client

    async def place(
        self,
        *,
        to: str,
        from_number: str,
        twiml: str,
        status_callback: str,
        machine_detection: str | None = None,
        ring_timeout: int | None = None,
        time_limit: int | None = None,
        record: bool | None = None,
        recording: Mapping[str, object] | None = None,
        events: Sequence[str] = STATUS_CALLBACK_EVENTS,
    ) -> PlacedCall:
        """Ask Twilio to call `to` and run `twiml` once answered.

        Args:
            to: The number to call, E.164.
            from_number: The caller id, a number of this Twilio account.
            twiml: The call's TwiML, inline (at most 4,000 characters).
            status_callback: Where Twilio POSTs the call's progress.
            machine_detection: `Enable` or `DetectMessageEnd`, to detect voicemail.
            ring_timeout: Seconds to let the phone ring.
            time_limit: Longest the call may last, in seconds.
            record: Whether Twilio records the call.
            recording: With `record`, how (`recording.twilio.recording_fields`: dual
                channel, reported to this server).
            events: The progress events to receive.

        Raises:
            CallNotPlaced: Twilio refused, failed, or could not be reached.
        """
        client = self._get_client()
        optional = {
            "machine_detection": machine_detection,
            "timeout": ring_timeout,
            "time_limit": time_limit,
            "record": record,
            **(recording if record and recording else {}),
        }
        try:
            # twilio-python's async client does not apply its own timeout.
            async with asyncio.timeout(self._timeout):
                call = await client.calls.create_async(
                    to=to,
                    from_=from_number,
                    twiml=twiml,
                    status_callback=status_callback,
                    status_callback_event=list(events),
                    **{k: v for k, v in optional.items() if v is not None},  # type: ignore[arg-type]
                )
        except TwilioException as exc:
            answer = refusal(exc)
            logger.warning(f"Twilio refused the call: {answer.detail} ({answer.twilio_code})")
            raise answer from None
        except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
            # Nothing reached Twilio, so nothing was placed: trying again is safe.
            logger.warning(f"Twilio unreachable: {type(exc).__name__}: {exc}")
            raise CallNotPlaced(
                503, "Twilio cannot be reached from this server", retry_after=UNREACHABLE_RETRY_SECS
            ) from None
        except TimeoutError:
            logger.warning(f"Twilio did not answer within {self._timeout:g} s")
            raise CallNotPlaced(
                504,
                f"Twilio did not answer within {self._timeout:g} s{MAYBE_PLACED}",
                maybe_placed=True,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            logger.warning(f"Talking to Twilio failed: {type(exc).__name__}: {exc}")
            raise CallNotPlaced(
                502,
                f"The connection to Twilio failed mid-request{MAYBE_PLACED}",
                maybe_placed=True,
            ) from None
        if not call.sid:
            raise CallNotPlaced(502, "Twilio's answer carried no call SID")
        return PlacedCall(
            call_sid=call.sid, status=str(call.status or "queued"), from_number=from_number
        )

    async def aclose(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None
