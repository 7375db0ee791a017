"""The URLs Twilio comes back to during a transfer.

    …/transfer/dial-result?target=sales&leg=2         `<Dial action>`: how the dial ended
    …/transfer/whisper?call=CA…&expires=…&sig=…        `<Number url>`: what the agent hears

The dial's outcome is checked with Twilio's own signature (it covers the query).
The whisper URL is signed by this server too, with an expiry: an HMAC-SHA256
over the call and the expiry, keyed from the stream-token key (every replica
shares it), so only the agent's leg of that very transfer, soon after it,
hears that call's summary. The summary itself is on the call's record, never in
a URL (URLs reach access logs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

from settings import Settings
from telephony.stream_token import stream_secret

DIAL_RESULT_PATH = "/transfer/dial-result"
WHISPER_PATH = "/transfer/whisper"
# Twilio dials for up to 30 s (`<Dial timeout>`); the agent's leg asks right on answering.
WHISPER_TTL_SECS = 120
WHISPER_LABEL = b"switchboard whisper url v1"
# Without a shared key (local experiments), a key of this process's own.
_PROCESS_KEY = secrets.token_bytes(32)


def dial_result_url(base: str, target: str, leg: int) -> str:
    """Where Twilio reports the dial's end; `leg` is the bot's next stream in the call."""
    return f"{base}{DIAL_RESULT_PATH}?{urlencode({'target': target, 'leg': str(leg)})}"


def _key(settings: Settings) -> bytes:
    secret = stream_secret(settings) or _PROCESS_KEY
    return hmac.new(secret, WHISPER_LABEL, hashlib.sha256).digest()


def _mac(settings: Settings, call_sid: str, expires: int) -> str:
    message = f"{call_sid}.{expires}".encode()
    digest = hmac.new(_key(settings), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def whisper_url(base: str, settings: Settings, call_sid: str, now: float | None = None) -> str:
    """The signed, expiring URL of the call's whisper."""
    expires = int((time.time() if now is None else now) + WHISPER_TTL_SECS)
    query = {"call": call_sid, "expires": str(expires), "sig": _mac(settings, call_sid, expires)}
    return f"{base}{WHISPER_PATH}?{urlencode(query)}"


def whisper_problem(
    settings: Settings, call_sid: str, expires: str, sig: str, now: float | None = None
) -> str | None:
    """Why a whisper URL is refused (forged, changed or expired), or None when it is good."""
    if not call_sid or not expires.isdigit() or len(expires) > 12 or not sig:
        return "malformed whisper URL"
    if not hmac.compare_digest(sig.encode(), _mac(settings, call_sid, int(expires)).encode()):
        return "invalid signature"
    if int(expires) < (time.time() if now is None else now):
        return "expired"
    return None
