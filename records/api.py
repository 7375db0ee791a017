"""GET /calls and GET /calls/{sid}: call records and transcripts, behind the dial-out key.

    GET /calls?direction=inbound&status=completed&since=2026-01-01&limit=50&offset=0
    GET /calls/CA0123…   the call with its transcript

Both need `Authorization: Bearer $DIALOUT_API_KEY` (see `api_key`): records
hold phone numbers and what callers said. `GET /calls/{sid}` is also where
`POST /dialout` points for a placed call's latest status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api_key import require_api_key
from records.recorder import Recorder


def get_recorder(request: Request) -> Recorder:
    return request.app.state.records  # type: ignore[no-any-return]


RecorderDep = Annotated[Recorder, Depends(get_recorder)]


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class TurnOut(BaseModel):
    """One transcript turn."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    role: str
    text: str
    at: datetime


class CallOut(BaseModel):
    """A call's record, without its transcript."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    call_sid: str
    provider: str
    direction: str | None
    from_: str | None = Field(alias="from")
    to: str | None
    parameters: dict[str, Any]
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    status: str | None
    answered_by: str | None
    duration: int | None

    @classmethod
    def of(cls, call: Any) -> CallOut:
        """The record of an ORM `Call`."""
        return cls.model_validate(_columns(call))


class CallWithTranscript(CallOut):
    """A call's record with its transcript (empty when `STORE_TRANSCRIPTS=false`)."""

    turns: list[TurnOut]

    @classmethod
    def of(cls, call: Any) -> CallWithTranscript:
        """The record and transcript of an ORM `Call` loaded with its turns."""
        turns = [TurnOut.model_validate(turn) for turn in call.turns]
        return cls.model_validate({**_columns(call), "turns": turns})


class CallPageOut(BaseModel):
    """One page of calls, newest first."""

    calls: list[CallOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def _columns(call: Any) -> dict[str, Any]:
    # Named as Twilio and `POST /dialout` name them: `call_sid`, `from`, `to`.
    columns = {column.key: getattr(call, column.key) for column in call.__table__.columns}
    renamed = {"sid": "call_sid", "from_number": "from", "to_number": "to"}
    return {renamed.get(key, key): value for key, value in columns.items()}


def _utc(moment: datetime | None) -> datetime | None:
    # A date without a zone in a query string is taken as UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


router = APIRouter(prefix="/calls", tags=["calls"], dependencies=[Depends(require_api_key)])


@router.get("")
async def list_calls(
    records: RecorderDep,
    direction: Direction | None = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    end_reason: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CallPageOut:
    """Calls, newest first, filtered by direction, status, end reason and start time."""
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


@router.get("/{call_sid}", name="call_status")
async def get_call(call_sid: str, records: RecorderDep) -> CallWithTranscript:
    """One call's record, latest status and transcript."""
    call = await records.store.get_call(call_sid)
    if call is None:
        raise HTTPException(404, f"No call {call_sid} is on record")
    return CallWithTranscript.of(call)
