"""The tables: `calls`, one row a call, and `turns`, its transcript one turn a row.

Strings are TEXT: a SIP address or a provider's long call id is stored whole,
where a VARCHAR(n) on PostgreSQL would refuse the write ("value too long").
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Twilio's call statuses after which nothing changes any more.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# End reasons besides `bot.EndReason`'s (caller_hung_up, bot_ended, drained, error, …).
REJECTED = "rejected"
TRANSFERRED = "transferred"
NOT_PLACED = "not_placed"  # the provider refused a dial-out: no call was made
# A dial-out's status before the provider has said anything of it: being placed, or
# asked for with no answer (a timeout, a dropped connection): the call may exist.
PLACING = "placing"
UNKNOWN = "unknown"


class TurnRole(StrEnum):
    """Who a transcript turn is from."""

    USER = "user"
    ASSISTANT = "assistant"
    DTMF = "dtmf"
    TOOL = "tool"


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in UTC, read back timezone-aware from SQLite too (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime ({value}) is ambiguous: give it a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Call(Base):
    """One call, inbound or outbound, from the first time this server heard of it.

    Attributes:
        sid: The provider's call id (Twilio's CallSid).
        provider: `twilio` or `exotel`.
        direction: `inbound` or `outbound`.
        from_number: The caller.
        to_number: The number called.
        parameters: The call's custom parameters (TwiML `<Parameter>`s).
        started_at: When the server first heard of the call (webhook, dial-out or stream).
        answered_at: When the call's media stream started, or Twilio said it was answered.
        ended_at: When the call ended.
        end_reason: `caller_hung_up`, `bot_ended`, `drained`, `error`, `transferred`,
            `ended_by_api` or `rejected`.
        status: Twilio's latest call status (`ringing`, `in-progress`, `completed`, `busy`, …).
        status_sequence: The `SequenceNumber` of the status callback `status` came from.
        answered_by: Answering-machine detection's verdict (`human`, `machine_start`, …).
        duration: Twilio's `CallDuration`, in seconds, once the call completed.
        updated_at: When the record last changed (turns aside).
        attempt_id: For a dial-out, the attempt's id; until the provider names the call,
            also its `sid`.
        idempotency_key: The dial-out request's `Idempotency-Key`, if it had one.
        request_hash: A hash of the dial-out request, to tell a reused key.
        answer: The answer `POST /dialout` gave (status, body, headers), to give it again.
        recording_source: Who recorded the call: `local` (this server) or `twilio`.
        recording_location: A local recording's file name or `s3://` URL; Twilio's
            recording URL.
        recording_duration: The recording's length, in seconds, once it is finished.
        recording_sid: Twilio's recording SID (`RE…`).
        transfer_target: The target (by name) the call was last transferred to.
        transfer_to: That target's number.
        transfer_status: How the transfer went: `dialing` (Twilio dials the target),
            `refused` (Twilio refused it), `handed_off` (Exotel's flow took the call
            on), or the dial's outcome as Twilio's `DialCallStatus` says it
            (`completed`, `answered`, `busy`, `no-answer`, `failed`, `canceled`).
        transfer_summary: What the agent heard before being connected (the whisper).
        transferred_at: When the call was handed to the target.
        legs: How many streams the bot had in the call: 2 once a failed transfer
            brought the caller back.
        replica: The server process (its instance id) that holds, or held, the call's
            stream: where call control reaches the call.
        turns: The transcript, in order.
    """

    __tablename__ = "calls"

    sid: Mapped[str] = mapped_column(Text, primary_key=True)
    provider: Mapped[str] = mapped_column(Text, default="twilio")
    direction: Mapped[str | None] = mapped_column(Text, index=True)
    from_number: Mapped[str | None] = mapped_column(Text)
    to_number: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text, index=True)
    status_sequence: Mapped[int | None] = mapped_column(Integer)
    answered_by: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None]
    attempt_id: Mapped[str | None] = mapped_column(String(40), unique=True, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    answer: Mapped[dict[str, Any] | None]
    recording_source: Mapped[str | None] = mapped_column(String(16))
    recording_location: Mapped[str | None] = mapped_column(Text)
    recording_duration: Mapped[float | None] = mapped_column(Float)
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    transfer_target: Mapped[str | None] = mapped_column(Text)
    transfer_to: Mapped[str | None] = mapped_column(Text)
    transfer_status: Mapped[str | None] = mapped_column(Text)
    transfer_summary: Mapped[str | None] = mapped_column(Text)
    transferred_at: Mapped[datetime | None]
    legs: Mapped[int | None] = mapped_column(Integer)
    replica: Mapped[str | None] = mapped_column(Text)

    turns: Mapped[list[Turn]] = relationship(
        order_by="Turn.seq", cascade="all, delete-orphan", lazy="raise", passive_deletes=True
    )


class Turn(Base):
    """One turn of a call's transcript.

    Attributes:
        call_sid: The call.
        seq: The turn's place in the call, from 1.
        role: `user` (what the bot heard), `assistant` (what it said), `dtmf` (keys
            pressed) or `tool` (a tool the bot called: `name(arguments) → answer`).
        text: What was said, the keys pressed, or the tool call.
        at: When the turn began.
        reply_ms: On a bot turn that answers the caller, milliseconds from the end of their
            speech to the bot's first audio (none on the greeting).
    """

    __tablename__ = "turns"

    call_sid: Mapped[str] = mapped_column(
        Text, ForeignKey("calls.sid", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    reply_ms: Mapped[int | None] = mapped_column(Integer)


class Event(Base):
    """An event for the operator's webhook, in the outbox until it is delivered.

    Written in the same transaction as the record change it describes, so an
    event exists exactly when its change does; `events/sender.py` delivers it.

    Attributes:
        id: Its place in the outbox: a call's events go out in this order.
        event_id: Its unique `webhook-id`, the same on every attempt.
        type: `call.started`, `call.ended`, `dialout.status`, `tool.called`, ….
        call_sid: The call it is about.
        url: Where it goes.
        payload: The JSON body, exactly as signed and sent.
        created_at: When it was written.
        state: `pending`, `delivered` or `failed` (given up).
        attempts: Delivery attempts so far.
        next_attempt_at: When it may be tried (again).
        locked_until: While a sender is delivering it, until when it holds it.
        delivered_at: When the receiver took it.
        last_error: Why the last attempt failed.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_due", "state", "next_attempt_at"),
        Index("ix_events_call", "call_sid", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    call_sid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
