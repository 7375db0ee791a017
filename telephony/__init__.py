"""Telephony providers. Each one is a module with `NAME`, `matches`, `call_info`.

A provider module recognises its own `start` message, turns it into a
`CallInfo`, and offers a serializer for Pipecat's websocket transport.
"""

from __future__ import annotations

from typing import Any

from pipecat.serializers.base_serializer import FrameSerializer

from settings import Settings
from telephony import twilio
from telephony.call import CallInfo
from telephony.errors import HandshakeError, TelephonyError, UnknownProviderError
from telephony.handshake import read_start
from telephony.serializer import CallEvents

__all__ = [
    "CallEvents",
    "CallInfo",
    "HandshakeError",
    "TelephonyError",
    "UnknownProviderError",
    "identify",
    "read_start",
    "serializer_for",
]


def identify(start: dict[str, Any]) -> CallInfo:
    """Find the provider of a `start` message and read the call from it.

    Raises:
        UnknownProviderError: No provider recognises the message.
    """
    if twilio.matches(start):
        call = twilio.call_info(start)
    else:
        raise UnknownProviderError("a start message from an unknown provider")
    if not call.stream_sid or not call.call_sid:
        raise HandshakeError("the start message has no stream or call id")
    return call


def serializer_for(call: CallInfo, settings: Settings, events: CallEvents) -> FrameSerializer:
    """The serializer that speaks `call`'s provider's wire format."""
    return twilio.TwilioSerializer(call, settings, events)
