"""What placing a dial-out call gives back, whichever provider places it.

CallNotPlaced   the provider refused, or could not be reached; carries the
                HTTP answer to give (status, detail, Retry-After, provider fields)
"""

from __future__ import annotations

from dataclasses import dataclass

RATE_LIMITED_RETRY_SECS = 5
UNREACHABLE_RETRY_SECS = 30
# Said when the request may have reached the provider: a blind retry could ring the callee twice.
MAYBE_PLACED = (
    "; the call may have been placed anyway: its record (status_url) shows what the "
    "provider reports of it"
)


class CallNotPlaced(Exception):
    """No call is known to be placed; the HTTP answer that says why.

    Attributes:
        status: HTTP status to answer.
        detail: What went wrong, for the API's caller.
        retry_after: Seconds after which trying again may work, when it may.
        maybe_placed: The request may have reached the provider (no answer in time, or
            the connection dropped mid-request): the call may exist.
        fields: The provider's own details for the answer's body, e.g. `twilio_code`.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        retry_after: int | None = None,
        maybe_placed: bool = False,
        **fields: object,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.maybe_placed = maybe_placed
        self.fields = {name: value for name, value in fields.items() if value is not None}

    @property
    def twilio_code(self) -> int | None:
        """Twilio's error code, when Twilio answered with one."""
        code = self.fields.get("twilio_code")
        return code if isinstance(code, int) else None


@dataclass(frozen=True)
class PlacedCall:
    """A call the provider accepted.

    Attributes:
        call_sid: The provider's id for it.
        status: Its status when created (`queued`; Exotel says `in-progress`).
        from_number: The caller id it rings with.
    """

    call_sid: str
    status: str
    from_number: str = ""
