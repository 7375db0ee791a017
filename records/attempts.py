"""Dial-out attempts in the call records: written before the provider is asked, never lost.

An attempt's record is made before the REST request, under its attempt id
(`attempt-…`) as a stand-in SID, with the request's `Idempotency-Key`. Once the
provider names the call (its create answer, a status callback that carries the
attempt id, whichever reaches a replica first), the record takes the call's SID
(`bind`); a record the stream or a callback already made for that SID takes the
attempt's facts instead. Every step is a guarded write, so replicas racing on
one attempt agree.

    attempts = AttemptStore(call_store)
    earlier = await attempts.begin(attempt)        # None, or the record holding the key
    await attempts.settle(attempt.attempt_id, status="queued", answer=..., call_sid="CA…")
    await attempts.bind(attempt.attempt_id, "CA…")  # from a status callback
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from records.models import FINAL_STATUSES, PLACING, UNKNOWN, Call
from records.store import CallStore

ATTEMPT_PREFIX = "attempt-"
ATTEMPT_ID = re.compile(r"attempt-[0-9a-f]{32}")
# How long an Idempotency-Key holds: the same key within this long answers the same.
KEY_LIFETIME = timedelta(hours=24)


def new_attempt_id() -> str:
    """A fresh attempt id, `attempt-` and 32 hex digits (unguessable: it rides in URLs)."""
    return ATTEMPT_PREFIX + secrets.token_hex(16)


def is_attempt_id(text: str) -> bool:
    """Whether `text` has the shape of an attempt id."""
    return ATTEMPT_ID.fullmatch(text) is not None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Attempt:
    """A dial-out about to be placed.

    Attributes:
        attempt_id: Its id (see `new_attempt_id`).
        provider: `twilio` or `exotel`.
        to: The number to call.
        from_number: The caller id it rings with.
        parameters: The call's parameters for the bot.
        idempotency_key: The request's `Idempotency-Key`, if any.
        request_hash: A hash of the request, to tell a key reused for another one.
    """

    attempt_id: str
    provider: str
    to: str
    from_number: str
    parameters: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None


class AttemptStore:
    """Dial-out attempts, in the call records' `calls` table."""

    def __init__(self, store: CallStore) -> None:
        """Keep attempts in `store`'s database."""
        self._sessions = async_sessionmaker(store.engine, expire_on_commit=False)

    async def begin(self, attempt: Attempt) -> Call | None:
        """Record an attempt about to be placed, with status `placing`.

        Returns:
            None once recorded; else the record that holds the same `Idempotency-Key`
            (less than `KEY_LIFETIME` old), and nothing is written.

        Raises:
            DBAPIError, OSError: The database could not be written: place nothing.
        """
        for _ in range(2):
            try:
                async with self._sessions.begin() as session:
                    session.add(self._record(attempt))
                return None
            except IntegrityError:
                if attempt.idempotency_key is None:
                    raise
            earlier = await self._holding(attempt.idempotency_key)
            if earlier is not None and earlier.started_at > _now() - KEY_LIFETIME:
                return earlier
            await self._expire_key(attempt.idempotency_key)
        raise RuntimeError("the Idempotency-Key is taken and freed again and again")

    async def settle(
        self,
        attempt_id: str,
        *,
        status: str,
        answer: dict[str, Any],
        call_sid: str | None = None,
        end_reason: str | None = None,
    ) -> None:
        """Record how the provider answered: the call's SID and status, and the answer given.

        A status a callback already wrote is not undone (`queued` after `ringing`).
        """
        if call_sid is not None:
            await self.bind(attempt_id, call_sid)
        async with self._sessions.begin() as session:
            call = await self._by_attempt(session, attempt_id)
            if call is None:
                return
            call.answer = answer
            if call.status in (PLACING, UNKNOWN):
                call.status = status
            if status in FINAL_STATUSES:
                call.ended_at = call.ended_at or _now()
            call.end_reason = call.end_reason or end_reason
            call.updated_at = _now()

    async def release(self, attempt_id: str) -> None:
        """Forget an attempt the provider certainly did not place, and free its key."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(Call).where(Call.sid == attempt_id, Call.attempt_id == attempt_id)
            )

    async def bind(self, attempt_id: str, call_sid: str) -> str | None:
        """Give the attempt's record the call's SID, once the provider has named it.

        Returns:
            The SID the attempt is bound to now (another one if it was bound before),
            or None for an unknown attempt.
        """
        for _ in range(2):
            try:
                async with self._sessions.begin() as session:
                    return await self._bind(session, attempt_id, call_sid)
            except IntegrityError:
                continue  # the call's own record appeared meanwhile: merge into it
        return await self.call_sid_of(attempt_id)

    async def call_sid_of(self, attempt_id: str) -> str | None:
        """The SID of the call the attempt placed, once known; None before (or no attempt)."""
        async with self._sessions() as session:
            call = await self._by_attempt(session, attempt_id, lock=False)
        return None if call is None or call.sid == attempt_id else call.sid

    # -- Inside a transaction --

    async def _bind(self, session: AsyncSession, attempt_id: str, call_sid: str) -> str | None:
        call = await self._by_attempt(session, attempt_id)
        if call is None or call.sid != attempt_id:
            return None if call is None else call.sid
        session.expunge(call)
        own = await session.get(Call, call_sid, with_for_update=True, populate_existing=True)
        if own is None:
            moved = await _changed(
                session,
                update(Call).where(Call.sid == attempt_id).values(sid=call_sid, updated_at=_now()),
            )
            return call_sid if moved else await self._bound_meanwhile(session, attempt_id)
        # The stream or a callback recorded the call first: the attempt's facts join it.
        if not await _changed(session, delete(Call).where(Call.sid == attempt_id)):
            return await self._bound_meanwhile(session, attempt_id)
        await session.flush()
        for name in ("attempt_id", "idempotency_key", "request_hash", "answer"):
            setattr(own, name, getattr(call, name))
        own.direction = own.direction or call.direction
        own.from_number = own.from_number or call.from_number
        own.to_number = own.to_number or call.to_number
        own.parameters = own.parameters or call.parameters
        own.started_at = min(own.started_at, call.started_at)
        own.updated_at = _now()
        return call_sid

    async def _bound_meanwhile(self, session: AsyncSession, attempt_id: str) -> str | None:
        call = await self._by_attempt(session, attempt_id, lock=False)
        return None if call is None else call.sid

    async def _by_attempt(
        self, session: AsyncSession, attempt_id: str, lock: bool = True
    ) -> Call | None:
        query = (
            select(Call)
            .where(Call.attempt_id == attempt_id)
            .execution_options(populate_existing=True)
        )
        if lock:
            query = query.with_for_update()
        return (await session.scalars(query)).one_or_none()

    async def _holding(self, key: str) -> Call | None:
        async with self._sessions() as session:
            query = select(Call).where(Call.idempotency_key == key)
            return (await session.scalars(query)).one_or_none()

    async def _expire_key(self, key: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Call)
                .where(Call.idempotency_key == key, Call.started_at <= _now() - KEY_LIFETIME)
                .values(idempotency_key=None)
            )

    @staticmethod
    def _record(attempt: Attempt) -> Call:
        now = _now()
        return Call(
            sid=attempt.attempt_id,
            attempt_id=attempt.attempt_id,
            provider=attempt.provider,
            direction="outbound",
            from_number=attempt.from_number,
            to_number=attempt.to,
            parameters=dict(attempt.parameters),
            started_at=now,
            updated_at=now,
            status=PLACING,
            idempotency_key=attempt.idempotency_key,
            request_hash=attempt.request_hash,
        )


async def _changed(session: AsyncSession, statement: Any) -> int:
    """Run an UPDATE or DELETE; how many rows it changed (a guard for racing replicas)."""
    result = cast(CursorResult[Any], await session.execute(statement))
    return int(result.rowcount)
