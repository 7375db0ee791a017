"""Errors raised while a telephony media stream is set up.

TelephonyError
├── HandshakeError            the stream did not begin with a usable `start` message
│   └── UnknownProviderError  a `start` message no provider recognises
└── Unauthorized              the upgrade's credentials do not admit the stream
"""


class TelephonyError(Exception):
    """Base class: the call cannot go on; the websocket is closed with the message."""


class HandshakeError(TelephonyError):
    """The stream did not begin with a usable `start` message."""


class UnknownProviderError(HandshakeError):
    """A `start` message that no provider module recognises."""


class Unauthorized(TelephonyError):
    """The upgrade's credentials (signature, Basic auth, address) do not admit the stream."""
