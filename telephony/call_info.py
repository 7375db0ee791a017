"""What the server knows about one call once its media stream has started."""

from __future__ import annotations

from dataclasses import dataclass, field

# Parameters the server itself puts on a stream; everything else is the caller's own data.
# `token` and `attempt` authenticate the stream (telephony/stream_token.py) and reach
# neither the bot nor the call's record.
# The call-control parameters (`control`) say a stream brings a caller back to the bot
# after a transfer: which leg of the call it is, where the transfer went, and how it ended.
CONTROL_PARAMETERS = frozenset({"leg", "transfer_target", "transfer_result"})
RESERVED_PARAMETERS = (
    frozenset({"from_number", "to_number", "direction", "token", "attempt"}) | CONTROL_PARAMETERS
)


@dataclass(frozen=True)
class CallInfo:
    """One call, as described by its provider's `start` message.

    Attributes:
        provider: `twilio` or `exotel`.
        call_sid: The provider's id for the call.
        stream_sid: The provider's id for the media stream.
        account_sid: The provider account the call belongs to.
        from_number: Caller, E.164 where the provider gives it.
        to_number: Callee.
        direction: `inbound` (someone called us) or `outbound` (we placed it).
        parameters: Custom per-call data (TwiML `<Parameter>`s, Exotel custom parameters).
        sample_rate: Audio rate on the wire, in Hz.
        encoding: Audio encoding on the wire.
        control: The server's own call-control parameters (`CONTROL_PARAMETERS`).
    """

    provider: str
    call_sid: str
    stream_sid: str
    account_sid: str = ""
    from_number: str = ""
    to_number: str = ""
    direction: str = "inbound"
    parameters: dict[str, str] = field(default_factory=dict)
    sample_rate: int = 8000
    encoding: str = "audio/x-mulaw"
    control: dict[str, str] = field(default_factory=dict)

    @property
    def outbound(self) -> bool:
        """Whether this server placed the call (dial-out)."""
        return self.direction == "outbound"

    @property
    def leg(self) -> int:
        """Which stream of the call this is: 1, then one more each time a transfer came back."""
        value = self.control.get("leg", "1")
        return int(value) if value.isdigit() and 0 < int(value) < 100 else 1
