"""GET /calls and GET /calls/{sid}: call records and transcripts, behind the dial-out key.

    GET /calls?direction=inbound&status=completed&since=2026-01-01&limit=50&offset=0
    GET /calls/CA0123…   the call with its transcript

Both need `Authorization: Bearer $DIALOUT_API_KEY` (see `deps.require_api_key`): records
hold phone numbers and what callers said. `GET /calls/{sid}` is also where
`POST /dialout` points for a placed call's latest status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BeforeValidator

from deps import KEY_REFUSED, RecordsDep, refusal, require_api_key
from records.schemas import CallOut, CallPageOut, CallWithTranscript

# Past any real number of calls, and within a 64-bit integer (SQLite's, PostgreSQL's).
MAX_OFFSET = 2**62


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


def _iso_8601(value: object) -> object:
    # Pydantic alone would take a number as a Unix time: `since=2026` would mean 1970.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date or time, e.g. 2026-01-01") from None
    return value


def _utc(moment: datetime | None) -> datetime | None:
    # A date without a zone in a query string is taken as UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


Moment = Annotated[datetime | None, BeforeValidator(_iso_8601)]


router = APIRouter(
    prefix="/calls",
    tags=["calls"],
    dependencies=[Depends(require_api_key)],
    responses=KEY_REFUSED,
)


@router.get("")
async def list_calls(
    records: RecordsDep,
    direction: Direction | None = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    end_reason: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[Moment, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[Moment, Query(description="started before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> CallPageOut:
    """Calls, newest first, filtered by direction, status, end reason and start time.

    `since` is the first moment included, `until` the first left out.
    """
    page = await records.store.list_calls(
        direction=direction,
        status=status,
        end_reason=end_reason,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
        offset=offset,
    )
    more = offset + len(page.calls) < page.total
    return CallPageOut(
        calls=[CallOut.of(call) for call in page.calls],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=offset + len(page.calls) if more else None,
    )


@router.get("/{call_sid}", name="call_status", responses={404: refusal("No such call")})
async def get_call(call_sid: str, records: RecordsDep) -> CallWithTranscript:
    """One call's record, latest status and transcript."""
    call = await records.store.get_call(call_sid)
    if call is None:
        raise HTTPException(404, f"No call {call_sid} is on record")
    return CallWithTranscript.of(call)
