"""The latest known status of each call this server placed, fed by the providers' callbacks.

Kept in the call records' database (`records`), so a status callback that
reaches another replica than the one that placed the call still finds it. A
placed call's record is made before the provider is asked (`records.attempts`);
a callback's URL names the attempt, so even a call whose create answer was
lost (a timeout) gets its SID and status.

    store = CallStatusStore(call_store)
    await store.record(call_sid, "ringing", sequence=1, provider="twilio", attempt_id="attempt-…")
    (await store.get(call_sid)).status  # "ringing"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from records.attempts import AttemptStore
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
        self.attempts = AttemptStore(store)

    async def record(
        self,
        call_sid: str,
        status: str,
        *,
        provider: str,
        answered_by: str | None = None,
        duration: int | None = None,
        sequence: int | None = None,
        attempt_id: str | None = None,
        create: bool = False,
    ) -> CallStatus | None:
        """Apply one status callback to a placed call.

        Callbacks can arrive out of order: one older than what is stored (by
        `sequence`), or any after a final status, changes nothing.

        Args:
            call_sid: The call.
            status: Its new status.
            provider: The provider the callback came from; a call placed through
                another one is not touched.
            answered_by: Answering-machine detection's verdict, if the callback has one.
            duration: Call length in seconds, if the callback has one.
            sequence: The callback's `SequenceNumber`, if any.
            attempt_id: The dial-out attempt the callback's URL names: its record
                takes `call_sid` first.
            create: Start a record for a call not on record at all (the callback is
                authenticated: the provider itself reports a call of this account).

        Returns:
            The call's status after the update, or None when it was left alone.
        """
        if attempt_id is not None:
            await self.attempts.bind(attempt_id, call_sid)
        current = await self.get(call_sid)
        if current is not None and current.provider != provider:
            return None
        if current is None and not create:
            return None
        call = await self._store.update_status(
            call_sid,
            status,
            answered_by=answered_by,
            duration=duration,
            sequence=sequence,
            direction="outbound",
            provider=provider,
        )
        return None if call is None else CallStatus.of(call)

    async def get(self, call_sid: str) -> CallStatus | None:
        """The call's latest status, or None for a call not on record."""
        call = await self._store.get_call(call_sid)
        return None if call is None else CallStatus.of(call)
