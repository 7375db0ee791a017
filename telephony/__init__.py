"""Telephony providers. Each one is a module with `NAME`, `matches`, `call_info`.

A provider module recognises its own `start` message, turns it into a
`CallInfo`, and offers a serializer for Pipecat's websocket transport (and,
optionally, `transport_options` for that transport). Adding a provider is one
more module, listed in `PROVIDERS` and `SERIALIZERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from pipecat.serializers.base_serializer import FrameSerializer

from settings import Settings
from telephony import browser, exotel, twilio
from telephony.call_info import CallInfo
from telephony.errors import HandshakeError, TelephonyError, Unauthorized, UnknownProviderError
from telephony.handshake import read_start
from telephony.serializer import CallEvents

__all__ = [
    "CallEvents",
    "CallInfo",
    "HandshakeError",
    "TelephonyError",
    "Unauthorized",
    "UnknownProviderError",
    "identify",
    "read_start",
    "serializer_for",
    "transport_options",
]

# The browser's `start` is Twilio's with a mark of its own: it is recognised first.
PROVIDERS: tuple[ModuleType, ...] = (browser, twilio, exotel)
SERIALIZERS: dict[str, Callable[[CallInfo, Settings, CallEvents], FrameSerializer]] = {
    twilio.NAME: twilio.TwilioSerializer,
    exotel.NAME: exotel.ExotelSerializer,
    browser.NAME: browser.BrowserSerializer,
}


def identify(start: dict[str, Any]) -> CallInfo:
    """Find the provider of a `start` message and read the call from it.

    Raises:
        UnknownProviderError: No provider recognises the message.
    """
    provider = next((p for p in PROVIDERS if p.matches(start)), None)
    if provider is None:
        raise UnknownProviderError("a start message from an unknown provider")
    call: CallInfo = provider.call_info(start)
    if not call.stream_sid or not call.call_sid:
        raise HandshakeError("the start message has no stream or call id")
    return call


def serializer_for(call: CallInfo, settings: Settings, events: CallEvents) -> FrameSerializer:
    """The serializer that speaks `call`'s provider's wire format."""
    return SERIALIZERS[call.provider](call, settings, events)


def transport_options(call: CallInfo) -> dict[str, Any]:
    """Provider-specific settings for the call's websocket transport."""
    provider = next(p for p in PROVIDERS if call.provider == p.NAME)
    options: dict[str, Any] = getattr(provider, "transport_options", lambda _: {})(call)
    return options
