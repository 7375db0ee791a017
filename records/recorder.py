"""`Recorder`: the server's call records, written as calls go and off the audio path.

Each call gets a `CallRecording` with a queue and a writer task of its own:
the pipeline only queues (never awaits the database), the writer commits each
write in order, one transaction each, so a crash loses at most the write in
flight. Writes outside a call (the webhook, a rejected call) run on tasks of
their own. Every write is tried patiently and, if given up on, counted and
logged (`records.writes`); none is cancelled while the server runs, and at
shutdown `close` waits for them.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from sqlalchemy.exc import DBAPIError

from records.models import REJECTED, Turn, TurnRole
from records.store import CallStore
from records.transcript import Transcript
from records.writes import Write, Writes, describe
from telephony.call_info import CallInfo

# How long the end of a call waits for its writes; past it they go on in the background.
FLUSH_TIMEOUT = 10.0
# At shutdown, how long the writes still queued may take before they are given up on.
CLOSE_TIMEOUT = 30.0
# How long `/readyz` waits for the database to answer.
PING_TIMEOUT = 2.0
# A tool turn shows the call and its answer, cut to this many characters.
MAX_TOOL_TURN = 2000


class CallRecording:
    """One call's record: its start, each turn as it ends, and its end."""

    def __init__(
        self,
        store: CallStore,
        call: CallInfo,
        writes: Writes,
        *,
        transcripts: bool,
        replica: str | None = None,
        first_seq: int = 0,
    ):
        """Start recording `call`; its record is written at once, in the background.

        Args:
            store: Where the record goes.
            call: The call, from its `start` message.
            writes: The server's writes in flight, which the writer joins.
            transcripts: Whether to keep what was said, or only the call's metadata.
            replica: This server process's instance id, noted as the call's holder.
            first_seq: Turns already on record (a later leg's transcript goes on after them).
        """
        self.call_sid = call.call_sid
        self._store = store
        self._writes = writes
        self._leg = call.leg
        self._seq = first_seq
        self._queue: asyncio.Queue[Write | None] = asyncio.Queue()
        self._unwritten = 0
        self._ended = False
        self._transcripts = transcripts
        self.reply_latencies: list[float] = []
        self._reply_ms: int | None = None  # measured for the bot turn being spoken
        self._transcript = Transcript(self.add_turn) if transcripts else None
        self._writer = writes.start(self._write_all(), name=f"record-{call.call_sid}")
        self._submit(lambda: store.start_call(call, replica=replica))

    def follow(self, aggregators: LLMContextAggregatorPair) -> None:
        """Record the turns the call's context aggregators write (unless transcripts are off)."""
        if self._transcript is not None:
            self._transcript.follow(aggregators)

    def add_turn(self, role: TurnRole, text: str, at: datetime | None = None) -> None:
        """Queue one transcript turn; returns at once."""
        if self._ended or not text.strip():
            return
        self._seq += 1
        seq, at = self._seq, at or datetime.now(UTC)
        reply_ms = None
        if role == TurnRole.ASSISTANT:
            reply_ms, self._reply_ms = self._reply_ms, None
        self._submit(lambda: self._store.add_turn(self.call_sid, seq, role, text, at, reply_ms))

    def add_reply_latency(self, seconds: float) -> None:
        """Note how long the bot took to start answering one turn.

        It goes with the bot's next turn (measured when the bot starts speaking,
        while the turn is written once it has finished, so the two meet here),
        and into the `call.ended` event.
        """
        self._reply_ms = round(seconds * 1000)
        self.reply_latencies.append(seconds)

    def tool_called(
        self, tool: str, arguments: Mapping[str, Any], result: Any, **details: Any
    ) -> None:
        """Queue a tool call the bot made: a `tool` turn and its `tool.called` event."""
        if self._ended:
            return
        at = datetime.now(UTC)
        text = f"{tool}({json.dumps(dict(arguments), ensure_ascii=False)}) → "
        text = (text + json.dumps(result, ensure_ascii=False, default=str))[:MAX_TOOL_TURN]
        seq = None
        if self._transcripts:
            self._seq += 1
            seq = self._seq
        event = {"tool": tool, "arguments": dict(arguments), "result": result, **details}

        def turn() -> Turn | None:
            if seq is None:
                return None
            return Turn(call_sid=self.call_sid, seq=seq, role=str(TurnRole.TOOL), text=text, at=at)

        self._submit(lambda: self._store.tool_called(self.call_sid, turn(), event))

    def transferred(self, details: Mapping[str, Any]) -> None:
        """Queue the call's transfer (`target`, `to`, `status`) and its `call.transferred` event."""
        self._submit(lambda: self._store.transferred(self.call_sid, details))

    def transfer_ended(self, status: str, details: Mapping[str, Any]) -> None:
        """Queue the transfer's outcome (`refused`, …) and its `call.transfer_ended` event."""
        self._submit(lambda: self._store.transfer_ended(self.call_sid, status, details))

    def set_recording(self, source: str, location: str) -> None:
        """Queue a note of where the call's recording goes; returns at once."""
        self._submit(lambda: self._store.set_recording(self.call_sid, source, location))

    async def end(self, reason: str) -> None:
        """Queue the call's end, then wait a while for every write to reach the database.

        Writes still queued after `FLUSH_TIMEOUT` go on in the background.
        """
        if self._ended:
            return
        at = datetime.now(UTC)
        details = {"reply_latencies": list(self.reply_latencies)}
        self._submit(lambda: self._store.end_call(self.call_sid, reason, at, details, self._leg))
        self._ended = True
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), FLUSH_TIMEOUT)
        except TimeoutError:
            logger.warning(
                f"Call record: {self._unwritten} write(s) still going, the database is slow"
            )

    def stop(self) -> None:
        """Take no more writes (the server is stopping); the writer finishes those queued."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    def _submit(self, write: Write) -> None:
        if not self._ended:
            self._unwritten += 1
            self._queue.put_nowait(write)

    async def _write_all(self) -> None:
        with logger.contextualize(call_sid=self.call_sid):
            try:
                while (write := await self._queue.get()) is not None:
                    await self._writes.patiently(self.call_sid, write)
                    self._unwritten -= 1
            except asyncio.CancelledError:
                # The one in flight counted itself.
                queued = self._unwritten - 1
                if queued > 0:
                    self._writes.lost(queued, "the server stopped before they were written")
                raise


class Recorder:
    """The server's call records: one `CallRecording` per call, and writes outside calls."""

    def __init__(
        self,
        store: CallStore,
        *,
        transcripts: bool = True,
        failed: Callable[[int], None] = lambda _: None,
    ) -> None:
        """Record calls in `store`.

        Args:
            store: The call records' database.
            transcripts: Whether to keep transcripts (`STORE_TRANSCRIPTS`).
            failed: Told how many writes were given up on, as they are (a metric).
        """
        self.store = store
        self.transcripts = transcripts
        self._writes = Writes(failed)
        self._recordings: weakref.WeakSet[CallRecording] = weakref.WeakSet()

    async def open(self) -> None:
        """Migrate the schema; fails loudly when the database is out of reach.

        Raises:
            RuntimeError: The database could not be reached or migrated.
        """
        logger.info(f"Call records: {self.store.url}")
        try:
            await self.store.migrate()
        except (DBAPIError, OSError) as e:
            raise RuntimeError(f"cannot open the call records at {self.store.url}: {e}") from e

    async def close(self) -> None:
        """Finish the writes still in flight (up to `CLOSE_TIMEOUT`), then close the database."""
        for recording in list(self._recordings):  # a call cut off never wrote its end
            recording.stop()
        await self._writes.close(CLOSE_TIMEOUT)
        await self.store.close()

    async def problem(self) -> str | None:
        """What keeps the database from taking records now, or None (a readiness check)."""
        try:
            await asyncio.wait_for(self.store.ping(), PING_TIMEOUT)
        except TimeoutError:
            return f"the database did not answer within {PING_TIMEOUT:g} s"
        except Exception as e:
            return f"the database is unreachable ({describe(e)})"
        return None

    def recording(
        self, call: CallInfo, *, replica: str | None = None, first_seq: int = 0
    ) -> CallRecording:
        """Start recording a call whose media stream just started (see `CallRecording`)."""
        recording = CallRecording(
            self.store,
            call,
            self._writes,
            transcripts=self.transcripts,
            replica=replica,
            first_seq=first_seq,
        )
        self._recordings.add(recording)
        return recording

    def incoming(
        self, sid: str, *, from_number: str, to_number: str, parameters: dict[str, str]
    ) -> None:
        """Note a call that rang the webhook, before its stream starts (maybe elsewhere)."""
        at = datetime.now(UTC)
        self._writes.fire(
            sid,
            lambda: self.store.note_call(
                sid,
                direction="inbound",
                from_number=from_number,
                to_number=to_number,
                parameters=parameters,
                status="ringing",
                at=at,
            ),
        )

    def rejected(
        self,
        sid: str,
        *,
        provider: str = "twilio",
        direction: str = "inbound",
        from_number: str | None = None,
        to_number: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        """Record a call turned away (at capacity, draining): it ends as `rejected`."""
        at = datetime.now(UTC)

        async def reject() -> None:
            await self.store.note_call(
                sid,
                provider=provider,
                direction=direction,
                from_number=from_number,
                to_number=to_number,
                parameters=parameters,
                at=at,
            )
            await self.store.end_call(sid, REJECTED, at=at)

        self._writes.fire(sid, reject)

    def transferred(self, call_sid: str, details: Mapping[str, Any]) -> None:
        """Record a transfer of a call held elsewhere: its `call.transferred` event."""
        self._writes.fire(call_sid, lambda: self.store.transferred(call_sid, details))
