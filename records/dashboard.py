"""Reads for the console: the calls in progress with their last words, and the figures
of a period (calls per hour, how they were answered and ended, reply latency).

Plain queries that run alike on SQLite and PostgreSQL; the figures are worked
out in Python from bounded reads, so no SQL dialect's date functions are needed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from records.models import Call, Turn, TurnRole
from records.store import CallStore

# A call on record as answered and not ended for longer than this is taken to be
# one a crashed replica never closed, not a live call.
LIVE_WITHIN = timedelta(hours=6)
MAX_LIVE = 200
# The overview reads at most this many calls and reply latencies of a period.
MAX_ROWS = 100_000


@dataclass(frozen=True)
class LiveCall:
    """A call in progress, as its record shows it.

    Attributes:
        last_role: Who spoke last (`user`, `assistant`, `dtmf`, …), if anyone has.
        last_text: What they said.
    """

    sid: str
    provider: str
    direction: str | None
    from_number: str | None
    to_number: str | None
    parameters: dict[str, Any]
    answered_at: datetime | None
    last_role: str | None = None
    last_text: str | None = None


@dataclass
class Figures:
    """What the calls of one period add up to.

    Attributes:
        since: The period's start (its end is now).
        calls: How many calls started in it.
        per_hour: Calls started in each hour, oldest first, from `since`'s hour.
        answered: Calls by how they were answered (`bot answered`, `busy`, `no-answer`, …).
        ended: Calls by end reason.
        latencies_ms: Every bot turn's reply latency in the period, ascending.
        durations: Answered calls' lengths, in seconds.
    """

    since: datetime
    calls: int = 0
    per_hour: list[int] = field(default_factory=list)
    answered: Counter[str] = field(default_factory=Counter)
    ended: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[int] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)

    def latency_percentile(self, percent: float) -> int | None:
        """The reply latency `percent` of turns stay within (nearest rank), or None."""
        if not self.latencies_ms:
            return None
        rank = max(1, math.ceil(percent / 100 * len(self.latencies_ms)))
        return self.latencies_ms[min(rank, len(self.latencies_ms)) - 1]


def _sessions(store: CallStore) -> async_sessionmaker[Any]:
    return async_sessionmaker(store.engine, expire_on_commit=False)


async def live_calls(store: CallStore, now: datetime | None = None) -> list[LiveCall]:
    """Calls answered and not yet ended, on every replica sharing the records, newest first."""
    now = now or datetime.now(UTC)
    query = (
        select(Call)
        .where(
            Call.ended_at.is_(None),
            Call.answered_at.is_not(None),
            Call.answered_at >= now - LIVE_WITHIN,
        )
        .order_by(Call.answered_at.desc())
        .limit(MAX_LIVE)
    )
    async with _sessions(store)() as session:
        calls = (await session.scalars(query)).all()
        last = await _last_turns(session, [call.sid for call in calls])
    return [
        LiveCall(
            sid=call.sid,
            provider=call.provider,
            direction=call.direction,
            from_number=call.from_number,
            to_number=call.to_number,
            parameters=dict(call.parameters or {}),
            answered_at=call.answered_at,
            last_role=last[call.sid].role if call.sid in last else None,
            last_text=last[call.sid].text if call.sid in last else None,
        )
        for call in calls
    ]


async def last_turns(store: CallStore, sids: Sequence[str]) -> dict[str, Turn]:
    """The latest transcript turn of each of these calls (calls with none are left out)."""
    async with _sessions(store)() as session:
        return await _last_turns(session, sids)


async def _last_turns(session: Any, sids: Sequence[str]) -> dict[str, Turn]:
    if not sids:
        return {}
    latest = (
        select(Turn.call_sid, func.max(Turn.seq).label("seq"))
        .where(Turn.call_sid.in_(sids))
        .group_by(Turn.call_sid)
        .subquery()
    )
    same = (Turn.call_sid == latest.c.call_sid) & (Turn.seq == latest.c.seq)
    query = select(Turn).join(latest, same)
    return {turn.call_sid: turn for turn in (await session.scalars(query)).all()}


async def turns_after(store: CallStore, sid: str, seq: int) -> tuple[list[Turn], Call | None]:
    """A call's turns after the `seq`th, and its record (None if not on record)."""
    async with _sessions(store)() as session:
        call = await session.get(Call, sid)
        query = select(Turn).where(Turn.call_sid == sid, Turn.seq > seq).order_by(Turn.seq)
        return list((await session.scalars(query)).all()), call


def _answer(call: Any) -> str:
    if call.answered_at is not None:
        if call.answered_by and call.answered_by != "human":
            return f"answered by {call.answered_by}"
        return "answered"
    if call.end_reason == "rejected":
        return "rejected (busy)"
    if call.ended_at is None:
        return "ringing"
    return call.status or "not answered"


async def figures(store: CallStore, hours: int, now: datetime | None = None) -> Figures:
    """What the calls started in the last `hours` hours add up to."""
    now = now or datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    result = Figures(since=start, per_hour=[0] * hours)
    calls_query = (
        select(
            Call.started_at, Call.answered_at, Call.ended_at, Call.end_reason,
            Call.status, Call.answered_by,
        )
        .where(Call.started_at >= start)
        .limit(MAX_ROWS)
    )  # fmt: skip
    latency_query = (
        select(Turn.reply_ms)
        .join(Call, Call.sid == Turn.call_sid)
        .where(
            Call.started_at >= start,
            Turn.role == str(TurnRole.ASSISTANT),
            Turn.reply_ms.is_not(None),
        )
        .limit(MAX_ROWS)
    )
    async with _sessions(store)() as session:
        calls = (await session.execute(calls_query)).all()
        latencies = (await session.scalars(latency_query)).all()
    for call in calls:
        result.calls += 1
        hour = int((call.started_at - start).total_seconds() // 3600)
        if 0 <= hour < hours:
            result.per_hour[hour] += 1
        result.answered[_answer(call)] += 1
        if call.end_reason is not None:
            result.ended[call.end_reason] += 1
        if call.answered_at is not None and call.ended_at is not None:
            result.durations.append((call.ended_at - call.answered_at).total_seconds())
    result.latencies_ms = sorted(int(ms) for ms in latencies if ms is not None)
    return result
