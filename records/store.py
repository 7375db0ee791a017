"""`CallStore`: every write of a call's record and transcript (its reads: `records.reads`,
its transfers: `records.transfers`).

Writes are upserts keyed by the call SID, so the webhook on one replica, the
media stream on another and Twilio's status callbacks on a third all land in
one row, in whatever order they arrive. A change that the operator hears about
(`call.started`, `call.ended`, `dialout.status`, …) writes its event into the
outbox in the same transaction, through `events` (see `events/`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from records.database import create_engine, migrate, printable_url
from records.models import FINAL_STATUSES, REJECTED, TRANSFERRED, Base, Call, Turn
from records.outbox import Emitted, EventMaker
from records.reads import CallReads
from records.transfers import TransferWrites

if TYPE_CHECKING:
    from telephony.call_info import CallInfo


def _now() -> datetime:
    return datetime.now(UTC)


class CallStore(CallReads, TransferWrites):
    """Call records in a SQLite or PostgreSQL database, through SQLAlchemy's async engine."""

    def __init__(self, url: str) -> None:
        """Connect lazily to the database at `url` (nothing happens before the first query).

        Args:
            url: A SQLite or PostgreSQL URL, any driver spelling (see `async_database_url`).
        """
        self.engine: AsyncEngine = create_engine(url)
        self.url = printable_url(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.events: EventMaker | None = None

    async def migrate(self) -> None:
        """Bring the schema up to date (safe when several replicas start at once on PostgreSQL)."""
        await migrate(self.engine)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def ping(self) -> None:
        """Ask the database a trivial question; raises if it cannot answer."""
        async with self.engine.connect() as connection:
            await connection.execute(select(1))

    async def note_call(
        self,
        sid: str,
        *,
        provider: str = "twilio",
        direction: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        parameters: dict[str, str] | None = None,
        status: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Remember a call heard of before its media stream: at the webhook, or on dial-out.

        Fills in only what the record does not know yet, so it never undoes
        what the stream or a status callback wrote first.
        """

        def fill(call: Call) -> None:
            call.direction = call.direction or direction
            call.from_number = call.from_number or from_number
            call.to_number = call.to_number or to_number
            call.parameters = call.parameters or dict(parameters or {})
            if status and call.status is None:
                call.status = status

        await self._change(sid, fill, at, provider=provider)

    async def start_call(
        self, call: CallInfo, at: datetime | None = None, replica: str | None = None
    ) -> None:
        """The call's media stream started: the bot answered it (or has the caller back).

        A later leg (a failed transfer brought the caller back) reopens a call that
        ended `transferred`: it is live again until that leg ends.

        Args:
            call: The call, from its `start` message.
            at: When the stream started.
            replica: The server process that holds the stream (for call control).
        """
        at = at or _now()

        def answer(record: Call) -> Emitted:
            if record.end_reason == TRANSFERRED and call.leg > (record.legs or 1):
                record.ended_at = record.end_reason = None
                record.status = "in-progress"
            record.legs = max(record.legs or 1, call.leg)
            record.replica = replica or record.replica
            record.provider = call.provider
            record.direction = call.direction
            record.from_number = call.from_number or record.from_number
            record.to_number = call.to_number or record.to_number
            record.parameters = dict(call.parameters)
            record.answered_at = record.answered_at or at
            if record.status not in FINAL_STATUSES:
                record.status = "in-progress"
            return "call.started", {}

        await self._change(call.call_sid, answer, at, provider=call.provider)

    async def add_turn(
        self,
        call_sid: str,
        seq: int,
        role: str,
        text: str,
        at: datetime,
        reply_ms: int | None = None,
    ) -> None:
        """Append one transcript turn; its call's record is created if it is missing.

        Args:
            call_sid: The call.
            seq: The turn's place in the call, from 1; writing the same one twice fails.
            role: A `TurnRole`.
            text: What was said, or the keys pressed.
            at: When the turn began.
            reply_ms: For a bot turn answering the caller, how long the bot took to reply.
        """
        # Core statements, not the ORM's unit of work: a turn is written every few
        # seconds of every call, and the ORM's bookkeeping was a third of its CPU.
        async with self.engine.begin() as connection:
            await connection.execute(self._insert_ignoring(sid=call_sid, started_at=at))
            await connection.execute(
                insert(Turn).values(
                    call_sid=call_sid, seq=seq, role=str(role), text=text, at=at, reply_ms=reply_ms
                )
            )

    async def end_call(
        self,
        call_sid: str,
        reason: str,
        at: datetime | None = None,
        details: Mapping[str, Any] | None = None,
        leg: int | None = None,
    ) -> None:
        """The call ended, for `reason` (a `bot.EndReason`, or `rejected`).

        A call turned away is `busy` to Twilio; any other call that ended
        without a final status from Twilio is `completed`. `details` go into
        its `call.ended` event (e.g. `reply_latencies`). The end of a `leg`
        that a later leg has followed changes nothing: the call goes on. A stream
        that ends while Twilio dials a transfer target (the caller "left" it, as
        seen from a replica that did not make the transfer) ended `transferred`.
        """
        at = at or _now()

        def end(call: Call) -> Emitted | None:
            nonlocal reason
            if leg is not None and (call.legs or 1) > leg:
                return None
            ended_before = call.end_reason is not None
            if not ended_before and call.transfer_status == "dialing":
                reason = TRANSFERRED
            call.ended_at = call.ended_at or at
            call.end_reason = call.end_reason or str(reason)
            if call.status not in FINAL_STATUSES:
                call.status = "busy" if reason == REJECTED else "completed"
            return None if ended_before else ("call.ended", dict(details or {}))

        await self._change(call_sid, end, at)

    async def tool_called(
        self, call_sid: str, turn: Turn | None, details: Mapping[str, Any]
    ) -> None:
        """A tool the bot called answered: its transcript `turn` and its `tool.called` event."""
        rows = [] if turn is None else [turn]
        await self._change(call_sid, lambda _: ("tool.called", dict(details)), None, rows=rows)

    async def update_status(
        self,
        call_sid: str,
        status: str,
        *,
        answered_by: str | None = None,
        duration: int | None = None,
        sequence: int | None = None,
        direction: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        at: datetime | None = None,
        create: bool = True,
        provider: str = "twilio",
    ) -> Call | None:
        """Apply one of Twilio's status callbacks (`CallStatus`, `AnsweredBy`, …).

        Callbacks can arrive out of order: one older than the stored one (by
        `sequence`), or any after a final status, changes nothing but what
        was unknown (`answered_by`, `duration`).

        Args:
            create: Start a record for a call not on record yet; else leave it be.
            provider: The provider of a call whose record this starts.

        Returns:
            The call's record after the update; None for an unknown call not created.
        """
        at = at or _now()

        def apply(call: Call) -> Emitted:
            callback = {"status": status, "answered_by": answered_by, "duration": duration}
            emitted = ("dialout.status", callback | {"sequence": sequence})
            call.direction = call.direction or direction
            call.from_number = call.from_number or from_number
            call.to_number = call.to_number or to_number
            call.answered_by = call.answered_by or answered_by
            call.duration = duration if duration is not None else call.duration
            stale = (
                sequence is not None
                and call.status_sequence is not None
                and sequence <= call.status_sequence
            )
            if stale or call.status in FINAL_STATUSES:
                return emitted
            call.status = status
            call.status_sequence = sequence if sequence is not None else call.status_sequence
            if status == "in-progress":
                call.answered_at = call.answered_at or at
            if status in FINAL_STATUSES:
                call.ended_at = call.ended_at or at
            return emitted

        return await self._change(call_sid, apply, at, create=create, provider=provider)

    async def set_recording(
        self,
        call_sid: str,
        source: str,
        location: str,
        duration: float | None = None,
        recording_sid: str | None = None,
    ) -> None:
        """Note where the call's recording is kept (and, once finished, how long it is)."""

        def note(call: Call) -> None:
            call.recording_source, call.recording_location = source, location
            call.recording_duration = duration
            call.recording_sid = recording_sid or call.recording_sid

        await self._change(call_sid, note, None)

    async def forget_recordings(self, call_sids: Sequence[str], source: str) -> None:
        """The recordings of these calls (from `source`) were deleted."""
        if not call_sids:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                update(Call)
                .where(Call.sid.in_(call_sids), Call.recording_source == source)
                .values(recording_source=None, recording_location=None, recording_duration=None)
            )

    async def _change(
        self,
        sid: str,
        change: Callable[[Call], Emitted | None],
        at: datetime | None,
        create: bool = True,
        rows: Sequence[Base] = (),
        **known: Any,
    ) -> Call | None:
        # Create the row if it is missing, then lock it and change it: atomic on
        # both databases, whichever replica gets there first.
        at = at or _now()
        async with self._sessions.begin() as session:
            if create:
                await session.execute(self._insert_ignoring(sid=sid, started_at=at, **known))
            call = await session.get(Call, sid, with_for_update=True, populate_existing=True)
            if call is None:
                return None
            call.started_at = min(call.started_at, at)
            emitted = change(call)
            call.updated_at = _now()
            session.add_all(rows)
            event = None
            if emitted is not None and self.events is not None:
                kind, details = emitted
                if kind == "call.ended":  # the whole transcript, as it stands at the end
                    await session.flush()
                    query = select(Turn).where(Turn.call_sid == sid).order_by(Turn.seq)
                    details["transcript"] = list((await session.scalars(query)).all())
                event = self.events.make(kind, call, details)
                if event is not None:
                    session.add(event)
        if event is not None and self.events is not None:
            self.events.written()
        return call

    def _insert_ignoring(self, **values: Any) -> Any:
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        return insert(Call).values(**values).on_conflict_do_nothing(index_elements=[Call.sid])
