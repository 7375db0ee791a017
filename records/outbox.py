"""The events outbox, on the database side: how changes write events, how senders take them.

A record change that the operator hears about returns what it `Emitted`; the
store's `EventMaker` turns that into an `Event` row in the same transaction.
Senders (`events/sender.py`, one per replica) `claim` due events: a call's
events one at a time and in order, each event by one sender (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, a lease checked on update everywhere), then record how
the delivery went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import aliased

from records.models import Call, Event

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

# What a change tells the operator: an event type and what it adds to the call's record.
Emitted = tuple[str, dict[str, Any]]


class EventMaker(Protocol):
    """Turns a record change into an outbox row (`events.builders.EventBuilder`)."""

    def make(self, kind: str, call: Call, details: Mapping[str, Any]) -> Event | None:
        """The event of type `kind` about `call`, or None when nobody listens."""
        ...

    def written(self) -> None:
        """Events were committed: the sender may look."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """The `events` table, as senders use it."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Use the call records' database."""
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"

    async def claim(self, limit: int, lease: float) -> Sequence[Event]:
        """Take up to `limit` due events for `lease` seconds; no other sender gets them meanwhile.

        An event waits while an earlier one of its call is still pending, so a
        call's events reach the receiver in the order they happened.
        """
        now = _now()
        earlier = aliased(Event)
        blocked = exists().where(
            earlier.call_sid == Event.call_sid, earlier.state == PENDING, earlier.id < Event.id
        )
        free = or_(Event.locked_until.is_(None), Event.locked_until < now)
        query = (
            select(Event)
            .where(Event.state == PENDING, Event.next_attempt_at <= now, free, ~blocked)
            .order_by(Event.id)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True, of=Event)
        claimed = []
        async with self._sessions.begin() as session:
            for event in (await session.scalars(query)).all():
                # Checked again as it is taken: on SQLite another process may have taken it.
                taken = await session.execute(
                    update(Event)
                    .where(Event.id == event.id, free)
                    .values(locked_until=now + timedelta(seconds=lease))
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(event)
        return claimed

    async def delivered(self, event: Event) -> None:
        """The receiver took `event`."""
        await self._set(event, state=DELIVERED, delivered_at=_now(), last_error=None)

    async def retry(self, event: Event, after: float, error: str) -> None:
        """The attempt failed; try again in `after` seconds."""
        at = _now() + timedelta(seconds=after)
        await self._set(event, next_attempt_at=at, last_error=error[:200])

    async def give_up(self, event: Event, error: str) -> None:
        """Stop trying to deliver `event`."""
        await self._set(event, state=FAILED, last_error=error[:200])

    async def give_up_on(self, url: str, error: str) -> int:
        """Stop delivering anything to `url` (the receiver said it is gone); how many events."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Event)
                .where(Event.url == url, Event.state == PENDING)
                .values(state=FAILED, last_error=error[:200], locked_until=None)
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def pending(self) -> int:
        """How many events wait for delivery."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Event).where(Event.state == PENDING)
            )
        return int(count or 0)

    async def purge(self, older_than: timedelta) -> None:
        """Forget delivered events older than `older_than`."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(Event).where(
                    Event.state == DELIVERED, Event.delivered_at < _now() - older_than
                )
            )

    async def _set(self, event: Event, **values: Any) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Event)
                .where(Event.id == event.id)
                .values(attempts=Event.attempts + 1, locked_until=None, **values)
            )
