"""Call records as the API and the export show them: JSON-ready, named as Twilio names them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TurnOut(BaseModel):
    """One transcript turn."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    role: str
    text: str
    at: datetime
    reply_ms: int | None = Field(
        None, description="A bot turn's reply latency: the caller's end of speech to its audio"
    )


class RecordingOut(BaseModel):
    """A call's recording: where to fetch it, how long it is, and who made it."""

    url: str
    duration: float | None
    source: str


class TransferOut(BaseModel):
    """Where the call was transferred, and how it went."""

    target: str | None = Field(description="The target's name")
    to: str | None = Field(description="The target's number")
    status: str | None = Field(
        description="dialing, refused, handed_off (Exotel), or Twilio's DialCallStatus: "
        "completed, answered, busy, no-answer, failed, canceled"
    )
    at: datetime | None = Field(description="When the call was handed to the target")


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
    attempt_id: str | None = Field(None, description="A dial-out's attempt id")
    idempotency_key: str | None = Field(None, description="A dial-out's Idempotency-Key")
    recording: RecordingOut | None = None
    transfer: TransferOut | None = None
    legs: int | None = Field(
        None, description="The bot's streams in the call: 2 once a failed transfer came back"
    )
    replica: str | None = Field(None, description="The server process that holds (held) it")

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
    out = {renamed.get(key, key): value for key, value in columns.items()}
    # Wherever it is kept, a recording is fetched from this server (recording/routes.py).
    if call.recording_source and call.recording_location:
        out["recording"] = RecordingOut(
            url=f"/calls/{call.sid}/recording",
            duration=call.recording_duration,
            source=call.recording_source,
        )
    if call.transfer_target or call.transfer_status:
        out["transfer"] = TransferOut(
            target=call.transfer_target,
            to=call.transfer_to,
            status=call.transfer_status,
            at=call.transferred_at,
        )
    return out
