"""Reading call records: one call with its transcript, or a filtered page of calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from records.models import Call, Turn


def _contains(text: str) -> str:
    """A LIKE pattern for `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class CallPage:
    """One page of calls, newest first.

    Attributes:
        calls: The calls on this page.
        total: How many calls match the filters, on all pages.
    """

    calls: Sequence[Call]
    total: int


class CallReads:
    """The queries of `CallStore` (which gives them its sessions)."""

    _sessions: async_sessionmaker[AsyncSession]

    async def get_call(self, sid: str) -> Call | None:
        """A call's record with its transcript, or None; `sid` may be a dial-out's attempt id."""
        async with self._sessions() as session:
            found = or_(Call.sid == sid, Call.attempt_id == sid)
            query = select(Call).where(found).options(selectinload(Call.turns)).limit(1)
            return (await session.scalars(query)).first()

    async def list_calls(
        self,
        *,
        direction: str | None = None,
        status: str | None = None,
        end_reason: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        limit: int = 50,
        offset: int = 0,
        with_turns: bool = False,
    ) -> CallPage:
        """Calls, newest first, filtered and paged.

        Args:
            direction: Only `inbound` or `outbound` calls.
            status: Only calls whose latest status is this.
            end_reason: Only calls that ended for this reason.
            since: Only calls started at or after this moment.
            until: Only calls started before this moment.
            text: Only calls whose transcript holds this text (any case, taken literally).
            limit: At most this many calls.
            offset: Skip this many first.
            with_turns: Load each call's transcript too.
        """
        query = select(Call)
        if direction is not None:
            query = query.where(Call.direction == direction)
        if status is not None:
            query = query.where(Call.status == status)
        if end_reason is not None:
            query = query.where(Call.end_reason == end_reason)
        if since is not None:
            query = query.where(Call.started_at >= since)
        if until is not None:
            query = query.where(Call.started_at < until)
        if text:
            said = select(Turn.call_sid).where(Turn.text.ilike(_contains(text), escape="\\"))
            query = query.where(Call.sid.in_(said))
        async with self._sessions() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            page = query.order_by(Call.started_at.desc(), Call.sid).limit(limit).offset(offset)
            if with_turns:
                page = page.options(selectinload(Call.turns))
            calls = (await session.scalars(page)).all()
        return CallPage(calls=calls, total=total or 0)
