"""A Twilio stream's token, checked once its `start` names the call (see `telephony.stream_token`).

The token names the call it was issued for: the call SID, for a call that rang
the webhook; or, for a dial-out, its attempt, whose record must hold this
stream's call SID. Twilio names a placed call in its answer to placing it (or in
a status callback), which normally lands long before the callee picks up; a
stream that starts first waits up to `ATTEMPT_WAIT_SECS` for it, then is refused.
No per-process state: any replica checks any stream.

Tokens are neither issued nor required when the server has no key (Twilio's
signatures off and no `STREAM_SECRET`), nor for Exotel, whose streams carry
Basic credentials or come from allowed addresses instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger
from sqlalchemy.exc import DBAPIError

from records.attempts import AttemptStore
from settings import Settings
from telephony import CallInfo, twilio
from telephony.stream_token import (
    ATTEMPT_PARAMETER,
    TOKEN_PARAMETER,
    TokenError,
    stream_secret,
    verify,
)

ATTEMPT_WAIT_SECS = 5.0
ATTEMPT_POLL_SECS = 0.1


class AttemptMismatch(TokenError):
    """A dial-out's token, on a stream of another call than the attempt placed."""

    reason = "attempt_mismatch"


class AttemptUnknown(TokenError):
    """A dial-out's token whose attempt has no call on record (in time)."""

    reason = "attempt_unknown"


async def check_token(
    start: dict[str, Any], call: CallInfo, settings: Settings, attempts: AttemptStore
) -> None:
    """Let the stream through only with a genuine, fresh token for this very call.

    Args:
        start: The stream's `start` message.
        call: The call it describes.
        settings: The key.
        attempts: Where a dial-out's attempt is on record.

    Raises:
        TokenError: The token is missing, invalid or expired, or names another call.
    """
    secret = stream_secret(settings)
    if secret is None or call.provider != twilio.NAME:
        return
    parameters = twilio.custom_parameters(start)
    attempt_id = parameters.get(ATTEMPT_PARAMETER, "")
    token = parameters.get(TOKEN_PARAMETER)
    verify(secret, token, call_sid="" if attempt_id else call.call_sid, parameters=parameters)
    if attempt_id:
        await _placed_this_call(attempts, attempt_id, call.call_sid)


async def _placed_this_call(attempts: AttemptStore, attempt_id: str, call_sid: str) -> None:
    deadline = time.monotonic() + ATTEMPT_WAIT_SECS
    while True:
        try:
            placed = await attempts.call_sid_of(attempt_id)
        except (DBAPIError, OSError) as e:
            logger.warning(f"Cannot read dial-out {attempt_id}: {type(e).__name__}")
            placed = None
        if placed == call_sid:
            return
        if placed is not None:
            raise AttemptMismatch(f"a stream token of dial-out {attempt_id}, for another call")
        if time.monotonic() >= deadline:
            raise AttemptUnknown(f"dial-out {attempt_id} has no call on record")
        await asyncio.sleep(ATTEMPT_POLL_SECS)
