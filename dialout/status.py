"""The latest known status of each call this server placed, fed by the providers' callbacks.

Kept in the call records' database (`records`), so a status callback that
reaches another replica than the one that placed the call still finds it.

    store = CallStatusStore(call_store)
    await store.placed(call_sid, to="+1555…", from_number="+1555…", status="queued")
    await store.record(call_sid, "ringing", sequence=1)
    (await store.get(call_sid)).status  # "ringing"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from records.models import FINAL_STATUSES, Call
from records.store import CallStore

__all__ = ["FINAL_STATUSES", "CallStatus", "CallStatusStore"]


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

    @classmethod
    def of(cls, call: Call) -> CallStatus:
        """The status part of a call's record."""
        return cls(
            call_sid=call.sid,
            to=call.to_number or "",
            from_number=call.from_number or "",
            status=call.status or "",
            answered_by=call.answered_by,
            duration=call.duration,
            sequence=-1 if call.status_sequence is None else call.status_sequence,
            updated_at=call.updated_at,
            provider=call.provider,
        )


class CallStatusStore:
    """Latest status per placed call, in the call records' database."""

    def __init__(self, store: CallStore) -> None:
        """Keep statuses in `store`.

        Args:
            store: The call records.
        """
        self._store = store

    async def placed(
        self,
        call_sid: str,
        *,
        to: str,
        from_number: str,
        status: str,
        provider: str = "twilio",
        parameters: dict[str, str] | None = None,
    ) -> CallStatus:
        """Remember a call this server has just created (with its parameters, for its events)."""
        await self._store.note_call(
            call_sid,
            provider=provider,
            direction="outbound",
            from_number=from_number,
            to_number=to,
            status=status,
            parameters=parameters,
        )
        entry = await self.get(call_sid)
        assert entry is not None
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
        """Apply one status callback to a call on record.

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
            The call's status after the update, or None for a call not on record
            (through `provider`).
        """
        if provider is not None:
            current = await self.get(call_sid)
            if current is None or current.provider != provider:
                return None
        call = await self._store.update_status(
            call_sid,
            status,
            answered_by=answered_by,
            duration=duration,
            sequence=sequence,
            create=False,
        )
        return None if call is None else CallStatus.of(call)

    async def get(self, call_sid: str) -> CallStatus | None:
        """The call's latest status, or None for a call not on record."""
        call = await self._store.get_call(call_sid)
        return None if call is None else CallStatus.of(call)
