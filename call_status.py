"""The latest known status of each call this server placed, fed by the providers' callbacks.

Kept in memory for now; the interface is async and small so that a database can
back it later without changing its callers.

    store = CallStatusStore()
    await store.placed(call_sid, to="+1555…", from_number="+1555…", status="queued")
    await store.record(call_sid, "ringing", sequence=1)
    (await store.get(call_sid)).status  # "ringing"
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

# Statuses after which Twilio sends nothing more; a late "ringing" must not undo them.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class CallStatus:
    """What is known of one placed call.

    Attributes:
        call_sid: The provider's id for the call.
        to: The number called.
        from_number: The caller id used.
        status: Twilio's call status: queued, initiated, ringing, in-progress,
            completed, busy, failed, no-answer or canceled.
        answered_by: Answering-machine detection's verdict (`human`,
            `machine_start`, `fax`, …), when detection was asked for.
        duration: Call length in seconds, once the call has ended.
        sequence: Twilio's `SequenceNumber` of the callback this came from (-1 before any).
        updated_at: When this status was recorded.
        provider: Who placed the call: `twilio` or `exotel`.
    """

    call_sid: str
    to: str
    from_number: str
    status: str
    answered_by: str | None = None
    duration: int | None = None
    sequence: int = -1
    updated_at: datetime | None = None
    provider: str = "twilio"


class CallStatusStore:
    """Latest status per placed call, in memory, the oldest forgotten past `capacity`."""

    def __init__(self, capacity: int = 10_000) -> None:
        """Start empty.

        Args:
            capacity: How many calls to remember; the least recently placed go first.
        """
        self._capacity = capacity
        self._calls: OrderedDict[str, CallStatus] = OrderedDict()

    async def placed(
        self, call_sid: str, *, to: str, from_number: str, status: str, provider: str = "twilio"
    ) -> CallStatus:
        """Remember a call this server has just created."""
        now = datetime.now(UTC)
        entry = CallStatus(call_sid, to, from_number, status, updated_at=now, provider=provider)
        self._calls[call_sid] = entry
        self._calls.move_to_end(call_sid)
        while len(self._calls) > self._capacity:
            self._calls.popitem(last=False)
        return entry

    async def record(
        self,
        call_sid: str,
        status: str,
        *,
        answered_by: str | None = None,
        duration: int | None = None,
        sequence: int | None = None,
        provider: str | None = None,
    ) -> CallStatus | None:
        """Apply one status callback to a placed call.

        Callbacks can arrive out of order: one older than what is stored (by
        `sequence`), or any after a final status, changes nothing.

        Args:
            call_sid: The call.
            status: Its new status.
            answered_by: Answering-machine detection's verdict, if the callback has one.
            duration: Call length in seconds, if the callback has one.
            sequence: The callback's `SequenceNumber`, if any.
            provider: The provider the callback came from; a call placed through
                another one is not touched.

        Returns:
            The call's status after the update, or None for a call this server did
            not place (through `provider`).
        """
        current = self._calls.get(call_sid)
        if current is None or provider not in (None, current.provider):
            return None
        stale = sequence is not None and sequence <= current.sequence
        if stale or current.status in FINAL_STATUSES:
            return current
        updated = replace(
            current,
            status=status,
            answered_by=answered_by or current.answered_by,
            duration=duration if duration is not None else current.duration,
            sequence=sequence if sequence is not None else current.sequence,
            updated_at=datetime.now(UTC),
        )
        self._calls[call_sid] = updated
        return updated

    async def get(self, call_sid: str) -> CallStatus | None:
        """The call's latest status, or None for a call this server did not place."""
        return self._calls.get(call_sid)
