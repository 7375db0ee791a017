"""`Recorder`: the server's call records, written as calls go and off the audio path.

Each call gets a `CallRecording` with a queue and a writer task of its own:
the pipeline only queues (never awaits the database), the writer commits each
write in order, one transaction each, so a crash loses at most the write in
flight. Writes outside a call (the webhook, a rejected call) are fired and
forgotten, with a reference kept until they finish.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from pipecat.observers.base_observer import BaseObserver
from sqlalchemy.exc import DBAPIError

from records.models import REJECTED, Turn, TurnRole
from records.store import CallStore
from records.transcript import TranscriptObserver
from telephony.call_info import CallInfo

# A write that fails because the database is out of reach is tried again after these pauses.
RETRY_PAUSES = (0.5, 2.0)
# How long the end of a call waits for its last writes before giving up on them.
FLUSH_TIMEOUT = 10.0
# A tool turn shows the call and its answer, cut to this many characters.
MAX_TOOL_TURN = 2000

Write = Callable[[], Awaitable[object]]


class CallRecording:
    """One call's record: its start, each turn as it ends, and its end."""

    def __init__(self, store: CallStore, call: CallInfo, *, transcripts: bool) -> None:
        """Start recording `call`; its record is written at once, in the background.

        Args:
            store: Where the record goes.
            call: The call, from its `start` message.
            transcripts: Whether to keep what was said, or only the call's metadata.
        """
        self.call_sid = call.call_sid
        self._store = store
        self._seq = 0
        self._queue: asyncio.Queue[Write | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_all(), name=f"record-{call.call_sid}")
        self._ended = False
        self._transcripts = transcripts
        self.reply_latencies: list[float] = []
        self._reply_ms: int | None = None  # measured for the bot turn being spoken
        self.observers: list[BaseObserver] = (
            [TranscriptObserver(self.add_turn)] if transcripts else []
        )
        self._submit(lambda: store.start_call(call))

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

    def set_recording(self, source: str, location: str) -> None:
        """Queue a note of where the call's recording goes; returns at once."""
        self._submit(lambda: self._store.set_recording(self.call_sid, source, location))

    async def end(self, reason: str) -> None:
        """Queue the call's end, then wait (a while) for every write to reach the database."""
        if self._ended:
            return
        at = datetime.now(UTC)
        details = {"reply_latencies": list(self.reply_latencies)}
        self._submit(lambda: self._store.end_call(self.call_sid, reason, at, details))
        self._ended = True
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), FLUSH_TIMEOUT)
        except TimeoutError:
            self._writer.cancel()
            logger.error(
                f"Call record: {self._queue.qsize()} writes lost, the database is too slow"
            )

    def _submit(self, write: Write) -> None:
        if not self._ended:
            self._queue.put_nowait(write)

    async def _write_all(self) -> None:
        while (write := await self._queue.get()) is not None:
            await write_patiently(write)


async def write_patiently(write: Write) -> None:
    """Run one write, again while the database is out of reach; log it if it still fails."""
    for pause in (*RETRY_PAUSES, None):
        try:
            await write()
            return
        except (DBAPIError, OSError) as e:
            connection_lost = isinstance(e, OSError) or e.connection_invalidated
            if pause is None or not connection_lost:
                logger.error(f"Call record write failed: {e}")
                return
            await asyncio.sleep(pause)
        except Exception:
            logger.exception("Call record write failed")
            return


class Recorder:
    """The server's call records: one `CallRecording` per call, and writes outside calls."""

    def __init__(self, store: CallStore, *, transcripts: bool = True) -> None:
        """Record calls in `store`.

        Args:
            store: The call records' database.
            transcripts: Whether to keep transcripts (`STORE_TRANSCRIPTS`).
        """
        self.store = store
        self.transcripts = transcripts
        self._tasks: set[asyncio.Task[None]] = set()

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
        """Finish the writes still in flight, then close the database."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=FLUSH_TIMEOUT)
        await self.store.close()

    def recording(self, call: CallInfo) -> CallRecording:
        """Start recording a call whose media stream just started."""
        return CallRecording(self.store, call, transcripts=self.transcripts)

    def incoming(
        self, sid: str, *, from_number: str, to_number: str, parameters: dict[str, str]
    ) -> None:
        """Note a call that rang the webhook, before its stream starts (maybe elsewhere)."""
        at = datetime.now(UTC)
        self._fire(
            lambda: self.store.note_call(
                sid,
                direction="inbound",
                from_number=from_number,
                to_number=to_number,
                parameters=parameters,
                status="ringing",
                at=at,
            )
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

        self._fire(reject)

    def transferred(self, call_sid: str, details: Mapping[str, Any]) -> None:
        """Record that a call was transferred (for call control): its `call.transferred` event."""
        self._fire(lambda: self.store.transferred(call_sid, details))

    def _fire(self, write: Callable[[], Coroutine[Any, Any, object]]) -> None:
        task = asyncio.create_task(write_patiently(write))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
