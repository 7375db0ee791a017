"""Why a transfer (or an API hang-up) was not made; `http_status` is what the API answers.

TransferError
├── UnknownTarget       the target is not one of the call's (422)
├── NotTransferable     the call cannot be moved from here: ended, or held elsewhere (409)
└── TransferRefused     Twilio refused the update, or was not reached (409 or 502)
"""

from __future__ import annotations

# Twilio's "Call is not in-progress. Cannot redirect.": the call has ended, or has not begun.
INVALID_CALL_STATE = 21220
NOT_FOUND = 20404


class TransferError(Exception):
    """A transfer that cannot be made."""

    http_status = 409


class UnknownTarget(TransferError):
    """The target is not one of the call's configured targets."""

    http_status = 422


class NotTransferable(TransferError):
    """The call cannot be moved from here: it has ended, or its provider cannot (from here)."""

    http_status = 409


class TransferRefused(TransferError):
    """Twilio refused the call update, or could not be reached.

    Attributes:
        code: Twilio's error code (0 when Twilio was not reached).
        reason: What Twilio said, for the API's answer and the log.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Twilio refused: {reason} ({code})" if code else reason)
        self.code = code
        self.reason = reason

    @property
    def http_status(self) -> int:  # type: ignore[override]
        """409 when the call is not in a state to be moved, else 502."""
        return 409 if self.code in (INVALID_CALL_STATE, NOT_FOUND) else 502
