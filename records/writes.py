"""`Writes`: the record writes in flight, each tried until it lands or is given up on.

A write that fails for a reason that may pass (the connection lost, the
database restarting or locked, a timeout) is tried again after a pause; one
that cannot succeed as it is (a value the schema refuses) is not. A write given
up on is counted (`switchboard_record_write_failures_total`) and logged with
its call SID, never dropped in silence. At shutdown, `close` waits for the
writes still queued, and counts the ones that did not make it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from loguru import logger
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

Write = Callable[[], Awaitable[object]]
# Pauses before each new try of a write whose error may pass: 10.5 s in all.
RETRY_PAUSES = (0.5, 2.0, 8.0)


# PostgreSQL's error classes that pass: connection trouble, a rolled-back transaction
# (deadlock, serialisation), resources, an operator's restart, a database not taking
# connections for now.
PASSING_SQLSTATES = ("08", "40", "53", "57", "55000", "55P03")


def may_pass(error: BaseException) -> bool:
    """Whether trying the same write again could succeed."""
    if isinstance(error, DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        return (
            error.connection_invalidated
            or isinstance(error, OperationalError | InterfaceError)  # SQLite's "locked"
            or isinstance(error.orig, OSError | TimeoutError)
            or sqlstate.startswith(PASSING_SQLSTATES)
        )
    return isinstance(error, OSError | TimeoutError)


def describe(error: BaseException) -> str:
    """The error in a few words: never the statement's values (numbers, what was said)."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {str(error.orig).splitlines()[0]}"
    return f"{type(error).__name__}: {error}"


class Writes:
    """The record writes of one server: their tasks, retries and failures.

    Args:
        failed: Called with the number of writes given up on, as they are.
    """

    def __init__(self, failed: Callable[[int], None] = lambda _: None) -> None:
        self.failed = failed
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run `work` on a task of its own, kept until it is done."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def fire(self, call_sid: str, write: Write) -> None:
        """Write in the background, patiently."""
        self.start(self.patiently(call_sid, write))

    async def patiently(self, call_sid: str, write: Write) -> bool:
        """Run one write, again while its error may pass; count and log it if it never lands.

        Returns:
            Whether the write landed.
        """
        with logger.contextualize(call_sid=call_sid):
            try:
                return await self._try(write)
            except asyncio.CancelledError:
                self.lost(1, "the server stopped before it was written")
                raise

    async def _try(self, write: Write) -> bool:
        for tries, pause in enumerate((*RETRY_PAUSES, None), start=1):
            try:
                await write()
                return True
            except Exception as e:
                if pause is not None and may_pass(e):
                    logger.warning(f"Call record write failed, trying again: {describe(e)}")
                    await asyncio.sleep(pause)
                    continue
                self.lost(1, f"{describe(e)} ({tries} tries)")
                return False
        raise AssertionError("unreachable: the last try returns")

    def lost(self, writes: int, why: str) -> None:
        """Count and log `writes` writes that will never land (in the caller's log context)."""
        logger.error(f"Call record: {writes} write(s) lost: {why}")
        self.failed(writes)

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait up to `timeout` seconds for every write; cancel (and so count) the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
