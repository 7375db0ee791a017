"""The console's browser calls: Twilio's media-stream protocol, spoken by a web page.

The console's Talk page captures the microphone, encodes it as 8 kHz μ-law and
sends Twilio's `connected`, `start`, `media`, `mark` and `stop` messages; its
`start` also says `"provider": "browser"`. The server answers exactly as it
does Twilio (`media`, `clear` on barge-in), so the call runs the same bot and
is recorded like any other, with provider `browser`.

Who may open one: the upgrade must carry a valid console session cookie and
come from a page of this server (its `Origin`), so another site cannot open a
call with a logged-in operator's cookie. There is no provider to hang up
through: when the bot ends the call the socket closes, and the page stops.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pipecat.frames.frames import CancelFrame, EndFrame, Frame
from starlette.datastructures import Headers

from console.session import COOKIE, session_of_headers
from settings import Settings
from telephony.call_info import RESERVED_PARAMETERS, CallInfo
from telephony.errors import HandshakeError
from telephony.twilio import TwilioSerializer
from telephony.twilio import call_info as twilio_call_info
from telephony.twilio import transport_options as twilio_transport_options

NAME = "browser"
# The page makes its call's ids; they cannot pass for (and so overwrite) a phone call's record.
CALL_SID = re.compile(r"BR[0-9a-f]{32}")
STREAM_SID = re.compile(r"MZ[0-9a-f]{32}")
FROM_NUMBER = "browser"
TO_NUMBER = "console"


def matches(start: dict[str, Any]) -> bool:
    """Whether a `start` message is the console's (Twilio's, marked `"provider": "browser"`)."""
    return start.get("provider") == NAME


def call_info(start: dict[str, Any]) -> CallInfo:
    """Read a browser call's `start` message.

    Raises:
        HandshakeError: Ids the console's page would not make, or audio other than 8 kHz μ-law.
    """
    call = twilio_call_info(start)
    if not CALL_SID.fullmatch(call.call_sid) or not STREAM_SID.fullmatch(call.stream_sid):
        raise HandshakeError("a browser call's ids are BR… and MZ… with 32 hex digits")
    if (call.sample_rate, call.encoding) != (8000, "audio/x-mulaw"):
        raise HandshakeError("a browser call sends 8 kHz audio/x-mulaw")
    return CallInfo(
        provider=NAME,
        call_sid=call.call_sid,
        stream_sid=call.stream_sid,
        from_number=FROM_NUMBER,
        to_number=TO_NUMBER,
        direction="inbound",
        parameters={k: v for k, v in call.parameters.items() if k not in RESERVED_PARAMETERS},
    )


def transport_options(call: CallInfo) -> dict[str, Any]:
    """The same as Twilio's: the bot's audio in 100 ms messages."""
    return twilio_transport_options(call)


def claims_browser(headers: Headers) -> bool:
    """Whether an upgrade carries the console's session cookie (Twilio and Exotel send none)."""
    return f"{COOKIE}=" in headers.get("cookie", "")


def upgrade_is_authorized(headers: Headers, settings: Settings, public_url: str) -> bool:
    """Whether an upgrade may open a browser call: a valid session, from this server's pages.

    Args:
        headers: The upgrade's headers.
        settings: Holds the key sessions are signed with.
        public_url: The server's public stream URL, whose host the page may also come from.
    """
    if session_of_headers(settings, headers) is None:
        return False
    origin = urlsplit(headers.get("origin", "")).netloc
    return bool(origin) and origin in {headers.get("host"), urlsplit(public_url).netloc}


class BrowserSerializer(TwilioSerializer):
    """Twilio's serializer, that never tries to hang up through Twilio's REST API."""

    def __init__(self, call: CallInfo, settings: Settings, events: Any) -> None:
        """Build the serializer for one browser call (no Twilio credentials are used)."""
        super().__init__(call, settings.model_copy(update={"twilio_auth_token": None}), events)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Encode a frame for the page; the end of the call is the socket closing."""
        if isinstance(frame, (EndFrame, CancelFrame)):
            return None
        return await super().serialize(frame)
