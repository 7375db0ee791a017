"""A call's timeline for its page: start, answer, each turn, DTMF, tool calls, transfer, end.

Built from the call's record as the API shows it (`GET /calls/{sid}`), so
whatever the record holds, the page shows: a `recording` and `events` appear
when the record carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

WHO = {"user": "Caller", "assistant": "Bot", "dtmf": "Keys", "tool": "Tool call"}
END_REASONS = {
    "caller_hung_up": "the caller hung up",
    "bot_ended": "the bot ended the call",
    "drained": "the server restarted (drain)",
    "error": "an error",
    "rejected": "turned away: at capacity or draining",
    "transferred": "transferred to a person",
    "ended_by_api": "hung up through the API",
}


@dataclass(frozen=True)
class Entry:
    """One line of the timeline.

    Attributes:
        kind: `start`, `answer`, `turn`, `transfer` or `end` (a CSS class too).
        at: When it happened.
        who: Who spoke, for a turn; else what happened.
        text: What was said, or the details.
        role: A turn's role (`user`, `assistant`, `dtmf`, `tool`, …).
        reply_ms: A bot turn's reply latency.
        offset: Seconds from the answer, where a recording would have it.
    """

    kind: str
    at: datetime | None
    who: str
    text: str = ""
    role: str = ""
    reply_ms: int | None = None
    offset: float | None = None


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def timeline(record: dict[str, Any]) -> list[Entry]:
    """The timeline of a call's record (`CallWithTranscript`, as JSON-ready data)."""
    answered = _moment(record.get("answered_at"))

    def offset(at: datetime | None) -> float | None:
        if at is None or answered is None:
            return None
        return max(0.0, (at - answered).total_seconds())

    entries = [Entry("start", _moment(record.get("started_at")), "Started", _origin(record))]
    if answered is not None:
        by = record.get("answered_by")
        entries.append(Entry("answer", answered, "Answered", f"answered by {by}" if by else ""))
    middle = [
        Entry(
            "turn",
            _moment(turn.get("at")),
            WHO.get(turn.get("role", ""), str(turn.get("role", "")).title()),
            str(turn.get("text", "")),
            role=str(turn.get("role", "")),
            reply_ms=turn.get("reply_ms"),
            offset=offset(_moment(turn.get("at"))),
        )
        for turn in record.get("turns") or []
    ]
    for event in record.get("events") or []:
        if event.get("type") == "call.transferred":
            at = _moment(event.get("created_at"))
            # Turns keep their order; a transfer goes after the turns begun before it.
            place = sum(1 for e in middle if at is None or (e.at is not None and e.at <= at))
            middle.insert(place, Entry("transfer", at, "Transferred", _details(event.get("data"))))
    entries.extend(middle)
    ended = _moment(record.get("ended_at"))
    if ended is not None:
        reason = record.get("end_reason")
        entries.append(Entry("end", ended, "Ended", END_REASONS.get(reason or "", reason or "")))
    return entries


def _origin(record: dict[str, Any]) -> str:
    provider, direction = record.get("provider"), record.get("direction")
    if provider == "browser":
        return "a browser call from the console"
    placed = "placed by this server" if direction == "outbound" else "incoming"
    return f"{placed}, via {provider}"


def _details(data: Any) -> str:
    if isinstance(data, dict):
        return ", ".join(f"{k}: {v}" for k, v in data.items() if v not in (None, ""))
    return "" if data is None else str(data)


def duration(record: dict[str, Any]) -> float | None:
    """How long the call lasted from its answer, in seconds (None before it ended)."""
    answered, ended = _moment(record.get("answered_at")), _moment(record.get("ended_at"))
    if answered is None or ended is None:
        return None
    return (ended - answered).total_seconds()
