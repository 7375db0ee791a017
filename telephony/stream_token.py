"""Per-call stream tokens: what makes a captured media-stream upgrade useless for another call.

Twilio signs the /ws upgrade over `wss://HOST/ws` alone, so its signature is
the same for every call, and nothing in `start` is signed. The server signs
each stream's `<Parameter>`s itself: one more parameter, `token`, is an
HMAC-SHA256 over the call it was issued for, every other parameter and an
expiry, keyed by a secret every replica shares (`STREAM_SECRET`, else derived
from `TWILIO_AUTH_TOKEN`). A replayed upgrade with another call's `start`, a
changed parameter or an expired token fails `verify`.

    token = issue(secret, call_sid="CA…", parameters=parameters, ttl=300)
    verify(secret, token, call_sid="CA…", parameters=parameters | {"token": token})

A dial-out's TwiML is written before Twilio names the call: its token is
issued for no call SID and signs the `attempt` parameter instead, whose record
must then hold the stream's call SID (`calls.tokens`). The expiry is checked
when the stream starts, so a call may last longer than the token.

TokenError (an `Unauthorized`)
├── TokenMissing   no token, where one is required
├── TokenInvalid   malformed, issued for another call, or a parameter changed
└── TokenExpired   past its expiry
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from settings import Settings
from telephony.errors import Unauthorized

TOKEN_PARAMETER = "token"
ATTEMPT_PARAMETER = "attempt"
VERSION = "switchboard-stream-1"
# The key when STREAM_SECRET is unset: the auth token, through a fixed label, so the
# token never carries anything that would let the auth token be recovered or reused.
DERIVATION_LABEL = b"switchboard stream token key v1"


class TokenError(Unauthorized):
    """The stream's token does not admit it; `reason` names why, for the metrics."""

    reason = "token_invalid"


class TokenMissing(TokenError):
    """The stream carries no token."""

    reason = "token_missing"


class TokenInvalid(TokenError):
    """The token is malformed, was issued for another call, or a parameter changed."""

    reason = "token_invalid"


class TokenExpired(TokenError):
    """The token is past its expiry."""

    reason = "token_expired"


def stream_secret(settings: Settings) -> bytes | None:
    """The key tokens are signed with; None when none are issued nor required.

    `STREAM_SECRET` when set; else derived from `TWILIO_AUTH_TOKEN` while Twilio's
    signatures are checked; else (local experiments) none.
    """
    if settings.stream_secret is not None:
        return settings.stream_secret.get_secret_value().encode()
    if settings.validates_signatures and settings.twilio_auth_token is not None:
        token = settings.twilio_auth_token.get_secret_value().encode()
        return hmac.new(token, DERIVATION_LABEL, hashlib.sha256).digest()
    return None


def issue(
    secret: bytes,
    *,
    call_sid: str,
    parameters: Mapping[str, str],
    ttl: float,
    now: float | None = None,
) -> str:
    """A token for a stream of `call_sid` with exactly `parameters`, good for `ttl` seconds.

    Args:
        secret: The key (see `stream_secret`).
        call_sid: The call the stream is for; "" for a dial-out (its `attempt` is signed).
        parameters: The stream's other `<Parameter>`s.
        ttl: Seconds until the stream must have started.
        now: The current Unix time (for tests); the clock when None.
    """
    expires = int((time.time() if now is None else now) + ttl)
    return f"{expires}.{_mac(secret, call_sid, parameters, expires)}"


def verify(
    secret: bytes,
    token: str | None,
    *,
    call_sid: str,
    parameters: Mapping[str, str],
    now: float | None = None,
) -> None:
    """Check a stream's token against its call and its parameters (`token` among them is ignored).

    Raises:
        TokenMissing: No token.
        TokenInvalid: Malformed, another call's, or the parameters differ.
        TokenExpired: Genuine, but past its expiry.
    """
    if not token:
        raise TokenMissing("no stream token")
    expiry, _, mac = token.partition(".")
    if not expiry.isdigit() or len(expiry) > 12 or not mac:
        raise TokenInvalid("malformed stream token")
    expected = _mac(secret, call_sid, parameters, int(expiry))
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise TokenInvalid("invalid stream token")
    if int(expiry) < (time.time() if now is None else now):
        raise TokenExpired("expired stream token")


def _mac(secret: bytes, call_sid: str, parameters: Mapping[str, str], expires: int) -> str:
    signed = sorted((str(k), str(v)) for k, v in parameters.items() if k != TOKEN_PARAMETER)
    message = json.dumps([VERSION, call_sid, signed, expires], separators=(",", ":"))
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
