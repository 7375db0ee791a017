"""The events the operator receives, as JSON, and where each goes.

Every event is a Standard Webhooks message:

    {"type": "call.ended", "timestamp": "2026-11-29T10:00:00Z",
     "data": {"call_sid", "provider", "direction", "from", "to", "assistant", "parameters", …}}

    call.started       the bot answered (the media stream started)
    call.ended         + started_at, answered_at, ended_at, duration, end_reason, status,
                       answered_by, transcript, recording (null until recordings exist),
                       reply_latencies (seconds, per turn)
    call.transferred   + target, to, status (dialing, handed_off): the call was handed over
    call.transfer_ended + target, to, status (the dial's outcome, or refused with code, reason)
    dialout.status     + status, answered_by, duration, sequence: each status callback
    tool.called        + tool, arguments, outcome, seconds, status, result

An event goes to its call's assistant's `events_url`, else `EVENTS_URL`; with
neither, nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from assistants.registry import ASSISTANT_PARAMETER, Assistants
from records.models import Call, Event, Turn
from records.outbox import PENDING
from tools.signing import new_message_id

CALL_STARTED = "call.started"
CALL_ENDED = "call.ended"
CALL_TRANSFERRED = "call.transferred"
DIALOUT_STATUS = "dialout.status"
TOOL_CALLED = "tool.called"


def _moment(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def call_identity(call: Call) -> dict[str, Any]:
    """Who and what a call is, in every event about it."""
    parameters = dict(call.parameters or {})
    return {
        "call_sid": call.sid,
        "provider": call.provider,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "assistant": parameters.get(ASSISTANT_PARAMETER),
        "parameters": parameters,
    }


def transcript(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """A call's turns as `call.ended` carries them."""
    return [
        {"seq": turn.seq, "role": turn.role, "text": turn.text, "at": _moment(turn.at)}
        for turn in turns
    ]


def ended(call: Call, details: Mapping[str, Any]) -> dict[str, Any]:
    """What `call.ended` adds: times, how it ended, the transcript and the reply latencies."""
    since = call.answered_at or call.started_at
    duration = None
    if call.ended_at is not None and since is not None:
        duration = round(max(0.0, (call.ended_at - since).total_seconds()), 3)
    return {
        "started_at": _moment(call.started_at),
        "answered_at": _moment(call.answered_at),
        "ended_at": _moment(call.ended_at),
        "duration": duration,
        "end_reason": call.end_reason,
        "status": call.status,
        "answered_by": call.answered_by,
        "transcript": transcript(details.get("transcript", ())),
        "recording": details.get("recording"),
        "reply_latencies": [round(s, 3) for s in details.get("reply_latencies", ())],
    }


def transferred(target: str, **more: Any) -> dict[str, Any]:
    """What `call.transferred` adds: where the call went (for the transfer code to pass on)."""
    return {"target": target, **more}


def event_data(kind: str, call: Call, details: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of an event of type `kind` about `call`."""
    data = call_identity(call)
    if kind == CALL_STARTED:
        data |= {"started_at": _moment(call.started_at), "answered_at": _moment(call.answered_at)}
    elif kind == CALL_ENDED:
        data |= ended(call, details)
    else:
        data |= dict(details)
    return data


def message(kind: str, data: Mapping[str, Any], at: datetime) -> str:
    """The body of an event, as signed and sent."""
    return json.dumps(
        {"type": kind, "timestamp": _moment(at), "data": dict(data)},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


class EventBuilder:
    """The store's `EventMaker`: outbox rows for the changes the operator hears about."""

    def __init__(
        self, assistants: Assistants, events_url: str | None, wake: Callable[[], None]
    ) -> None:
        """Build events for `events_url` (`EVENTS_URL`), or the call's assistant's own URL.

        Args:
            assistants: For each assistant's `events_url`.
            events_url: Where events go by default; None: only assistants' own.
            wake: Told when events were written, so the sender looks at once.
        """
        self._assistants = assistants
        self._events_url = events_url
        self._wake = wake

    def url_for(self, call: Call) -> str | None:
        """Where events about `call` go, or None."""
        name = (call.parameters or {}).get(ASSISTANT_PARAMETER)
        choice = self._assistants.named(name) if name else None
        if choice is not None and choice.assistant.events_url:
            return choice.assistant.events_url
        return self._events_url

    def make(self, kind: str, call: Call, details: Mapping[str, Any]) -> Event | None:
        """The outbox row of the event, or None when nobody listens."""
        url = self.url_for(call)
        if url is None:
            return None
        now = datetime.now(UTC)
        return Event(
            event_id=new_message_id(),
            type=kind,
            call_sid=call.sid,
            url=url,
            payload=message(kind, event_data(kind, call, details), now),
            created_at=now,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
        )

    def written(self) -> None:
        """Wake the sender."""
        self._wake()
