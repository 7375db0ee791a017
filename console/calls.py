"""The Calls page (the records, filtered and paged) and each call's own page.

GET /console/calls                  newest first; direction, status, end reason, dates, text
GET /console/calls/{sid}            timeline, recording, events delivered, the raw record
GET /console/calls/{sid}/feed       the call's turns as they are written (server-sent events)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from console.feeds import feed
from console.live import assistant_of
from console.pages import render
from console.timeline import END_REASONS, duration, timeline
from deps import ConsoleSessionDep, RecordsDep
from records import dashboard
from records.schemas import CallWithTranscript, TurnOut

PAGE_SIZE = 25
STATUSES = (
    "queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled",
)  # fmt: skip
MAX_SEARCH = 200

router = APIRouter()


@dataclass
class Filters:
    """The Calls page's filters, as typed in its form."""

    direction: str = ""
    status: str = ""
    end_reason: str = ""
    since: str = ""
    until: str = ""
    q: str = ""

    def query(self, **extra: Any) -> str:
        """The page's query string for these filters (empty ones left out)."""
        values = {k: v for k, v in vars(self).items() if v} | {k: v for k, v in extra.items() if v}
        return urlencode(values)


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field}: {text[:40]!r} is not a date like 2026-11-29") from None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@router.get("/console/calls", include_in_schema=False)
async def calls_page(
    request: Request,
    session: ConsoleSessionDep,
    records: RecordsDep,
    direction: str = "",
    status: str = "",
    end_reason: str = "",
    since: str = "",
    until: str = "",
    q: str = "",
    page: int = 1,
) -> Response:
    """The call records, newest first, filtered and paged."""
    filters = Filters(
        direction, status[:16], end_reason[:32], since[:10], until[:10], q[:MAX_SEARCH]
    )
    page = max(1, min(page, 100_000))
    error = None
    try:
        if direction not in ("", "inbound", "outbound"):
            raise ValueError("direction: inbound or outbound")
        first, last = _day(filters.since, "From"), _day(filters.until, "To")
    except ValueError as e:
        error, first, last = str(e), None, None
    calls: list[dict[str, Any]] = []
    total = 0
    if error is None:
        found = await records.store.list_calls(
            direction=direction or None,
            status=filters.status or None,
            end_reason=filters.end_reason or None,
            since=_start_of(first) if first else None,
            until=_start_of(last + timedelta(days=1)) if last else None,
            text=filters.q.strip() or None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        total = found.total
        calls = [_row(call) for call in found.calls]
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "calls.html",
        session,
        page="calls",
        status_code=400 if error else 200,
        error=error,
        filters=filters,
        calls=calls,
        total=total,
        number=page,
        pages=pages,
        newer=filters.query(page=page - 1 if page > 2 else "") if page > 1 else None,
        older=filters.query(page=page + 1) if page < pages else None,
        statuses=STATUSES,
        end_reasons=END_REASONS,
    )


def _row(call: Any) -> dict[str, Any]:
    record = {
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
    }
    return {
        "sid": call.sid,
        "started_at": call.started_at,
        "provider": call.provider,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "status": call.status,
        "end_reason": call.end_reason,
        "duration": duration(record),
        "assistant": assistant_of(call.parameters or {}),
    }


@router.get("/console/calls/{call_sid}", include_in_schema=False)
async def call_page(
    request: Request, call_sid: str, session: ConsoleSessionDep, records: RecordsDep
) -> Response:
    """One call: its timeline, recording, events delivered and raw record."""
    call = await records.store.get_call(call_sid)
    if call is None:
        return render(
            request, "missing.html", session, page="calls", status_code=404, call_sid=call_sid
        )
    record = CallWithTranscript.of(call).model_dump(mode="json", by_alias=True)
    return render(
        request,
        "call.html",
        session,
        page="calls",
        record=record,
        entries=timeline(record),
        duration=duration(record),
        assistant=assistant_of(record.get("parameters") or {}),
        recording=record.get("recording"),
        events=record.get("events"),
        raw=json.dumps(record, indent=2, ensure_ascii=False),
    )


@router.get("/console/calls/{call_sid}/feed", include_in_schema=False)
async def call_feed(
    request: Request,
    call_sid: str,
    _session: ConsoleSessionDep,
    records: RecordsDep,
    after: int = 0,
) -> StreamingResponse:
    """The call's turns after the `after`th, as they are written; `ended` once it is over.

    Each turn's event id is its place in the call, so a browser that reconnects
    (`Last-Event-ID`) gets only the turns it has not seen.
    """
    resumed = request.headers.get("last-event-id", "")
    seen = max(0, after, int(resumed) if resumed.isdigit() else 0)

    async def poll() -> tuple[list[tuple[str, Any, int | None]], bool]:
        nonlocal seen
        turns, call = await dashboard.turns_after(records.store, call_sid, seen)
        events: list[tuple[str, Any, int | None]] = [
            ("turn", TurnOut.model_validate(turn).model_dump(mode="json"), turn.seq)
            for turn in turns
        ]
        seen = turns[-1].seq if turns else seen
        over = call is not None and call.ended_at is not None
        if over:
            events.append(("ended", {"end_reason": call.end_reason if call else None}, None))
        return events, over

    return feed(request, poll)
