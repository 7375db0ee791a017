"""The Live page: calls in progress, on this server and on the replicas sharing its records.

GET /console              the page, filled in at once
GET /console/live/feed    its updates (server-sent events): the calls and capacity in use

A call on this server is known from its running bot the moment it starts; calls
on other replicas, and the last thing said on each call, come from the records
(each turn is written as it ends).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from loguru import logger
from sqlalchemy.exc import DBAPIError

from console.feeds import Changes, feed
from console.pages import render
from deps import AdmissionDep, ConsoleSessionDep, RecordsDep
from ops.admission import Admission
from records import dashboard
from records.recorder import Recorder
from telephony.call_info import CallInfo

router = APIRouter()


def assistant_of(parameters: dict[str, Any]) -> str | None:
    """The assistant a call runs, when the server names one in its parameters."""
    name = parameters.get("assistant")
    return str(name) if name else None


def _local_row(call: CallInfo) -> dict[str, Any]:
    return {
        "sid": call.call_sid,
        "provider": call.provider,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "assistant": assistant_of(call.parameters),
        "answered_at": None,
        "last_role": None,
        "last_text": None,
        "here": True,
    }


def capacity(admission: Admission) -> dict[str, Any]:
    """This server's capacity in use."""
    return {
        "live": admission.running,
        "max": admission.max_calls,
        "draining": admission.draining,
    }


async def snapshot(admission: Admission, records: Recorder) -> dict[str, Any]:
    """The calls in progress and this server's capacity in use, ready for JSON."""
    local = {bot.call.call_sid: bot.call for bot in admission.bots()}
    rows: list[dict[str, Any]] = []
    error = None
    try:
        stored = await dashboard.live_calls(records.store)
    except (DBAPIError, OSError) as e:
        logger.warning(f"Console: the records cannot be read: {e}")
        stored, error = [], "The call records cannot be read: showing this server's calls only."
    for call in stored:
        rows.append(
            {
                "sid": call.sid,
                "provider": call.provider,
                "direction": call.direction,
                "from": call.from_number,
                "to": call.to_number,
                "assistant": assistant_of(call.parameters),
                "answered_at": call.answered_at.isoformat() if call.answered_at else None,
                "last_role": call.last_role,
                "last_text": call.last_text,
                "here": call.sid in local,
            }
        )
    on_record = {row["sid"] for row in rows}
    # A call that just started may not be on record yet: its bot is.
    rows.extend(_local_row(call) for sid, call in local.items() if sid not in on_record)
    return {"calls": rows, "capacity": capacity(admission), "error": error}


@router.get("/console", include_in_schema=False)
async def live_page(
    request: Request, session: ConsoleSessionDep, admission: AdmissionDep, records: RecordsDep
) -> Response:
    """The Live page, with the calls as they are now; `live.js` keeps it current."""
    return render(
        request, "live.html", session, page="live", live=await snapshot(admission, records)
    )


@router.get("/console/live/feed", include_in_schema=False)
async def live_feed(
    request: Request, _session: ConsoleSessionDep, admission: AdmissionDep, records: RecordsDep
) -> StreamingResponse:
    """The calls in progress, sent again whenever they change."""
    changes = Changes()

    async def poll() -> tuple[list[tuple[str, Any, int | None]], bool]:
        now = await snapshot(admission, records)
        return ([("calls", now, None)] if changes.changed(now) else []), False

    return feed(request, poll)
