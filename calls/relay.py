"""In-call actions for a call another process holds, relayed through PostgreSQL LISTEN/NOTIFY.

    relay = CallRelay.for_engine(engine, holder)   # None unless the records are on PostgreSQL
    await relay.start()
    status, detail = await relay.ask(call_sid, {"action": "say", "text": "One moment."})

Every server process (each replica, each worker) listens on one request channel,
`switchboard_call_control`, and on a reply channel of its own. A request names
the call, the action and the reply channel; `holder` (calls/actions.py) acts on
it in the one process that holds the call, which answers (an HTTP status and a
detail) on the reply channel; the others stay quiet. No answer within
`ANSWER_WAIT_SECS` means no live process holds the call.

The connection is the records' database (`DATABASE_URL`), one of its own per
process, reopened when it drops. Errors (the API answers each with 409):

    RelayError
    ├── RelayDown   this process is not listening: its connection to PostgreSQL is down
    ├── NoAnswer    no process answered in time: the one that held the call has gone
    └── TooLarge    the request is over what a NOTIFY carries
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine

REQUESTS = "switchboard_call_control"
ANSWER_WAIT_SECS = 2.0
MAX_PAYLOAD_BYTES = 7900  # PostgreSQL's NOTIFY takes under 8000 bytes
RECONNECT_SECS = (0.5, 1.0, 2.0, 5.0)
# SQLAlchemy's own options in a URL's query, not asyncpg's.
_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")

# Given a call SID and a request: the (status, detail) of acting on it, or None when
# this process does not hold the call.
Holder = Callable[[str, dict[str, Any]], Awaitable[tuple[int, str] | None]]


class RelayError(Exception):
    """A request that could not reach the process holding the call."""


class RelayDown(RelayError):
    """This process is not listening: its connection to PostgreSQL is down."""


class NoAnswer(RelayError):
    """No process answered in time."""


class TooLarge(RelayError):
    """The request is too large for a NOTIFY payload."""


class CallRelay:
    """This process's end of the relay: asks for calls held elsewhere, acts for its own."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], holder: Holder):
        """Relay through the connections `connect` opens; act on requests with `holder`."""
        self._connect = connect
        self._holder = holder
        self._replies = f"switchboard_reply_{uuid.uuid4().hex}"
        self._waiting: dict[str, asyncio.Future[tuple[int, str]]] = {}
        self._connection: asyncpg.Connection | None = None
        self._sending = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @classmethod
    def for_engine(cls, engine: AsyncEngine, holder: Holder) -> CallRelay | None:
        """A relay over the records' PostgreSQL database; None for SQLite (one process only)."""
        if engine.dialect.name != "postgresql":
            return None
        _, options = engine.dialect.create_connect_args(engine.url)
        for option in _SQLALCHEMY_ONLY:
            options.pop(option, None)
        return cls(lambda: asyncpg.connect(**options), holder)

    async def start(self) -> None:
        """Listen; when PostgreSQL cannot be reached, keep trying in the background."""
        if not await self._listen():
            self._spawn(self._reconnect())

    async def close(self) -> None:
        """Stop listening and close the connection."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None

    async def ask(self, call_sid: str, request: dict[str, Any]) -> tuple[int, str]:
        """Have the process holding `call_sid` act on `request`; its (status, detail).

        Raises:
            RelayDown: This process's connection to PostgreSQL is down.
            NoAnswer: No process answered within `ANSWER_WAIT_SECS`.
            TooLarge: The request does not fit in a NOTIFY.
        """
        ask_id = uuid.uuid4().hex
        message = {"id": ask_id, "reply": self._replies, "call_sid": call_sid, "request": request}
        payload = json.dumps(message, ensure_ascii=False)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise TooLarge(f"the request is over {MAX_PAYLOAD_BYTES} bytes, too large to relay")
        answer = asyncio.get_running_loop().create_future()
        self._waiting[ask_id] = answer
        try:
            await self._notify(REQUESTS, payload)
            return await asyncio.wait_for(answer, ANSWER_WAIT_SECS)
        except TimeoutError:
            raise NoAnswer(f"no server process answered within {ANSWER_WAIT_SECS:g} s") from None
        finally:
            del self._waiting[ask_id]

    async def _notify(self, channel: str, payload: str) -> None:
        connection = self._connection
        if connection is None:
            raise RelayDown("the connection to PostgreSQL that reaches the others is down")
        try:
            async with self._sending:  # one connection: one statement at a time
                await connection.execute("SELECT pg_notify($1, $2)", channel, payload)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as e:
            raise RelayDown(f"could not reach PostgreSQL ({type(e).__name__})") from None

    async def _listen(self) -> bool:
        try:
            connection = await self._connect()
            await connection.add_listener(REQUESTS, self._on_request)
            await connection.add_listener(self._replies, self._on_reply)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as e:
            logger.warning(f"Call control relay: cannot listen on PostgreSQL ({e})")
            return False
        connection.add_termination_listener(self._on_lost)
        self._connection = connection
        return True

    def _on_lost(self, _connection: asyncpg.Connection) -> None:
        self._connection = None
        if not self._closing:
            logger.warning("Call control relay: lost PostgreSQL, reconnecting")
            self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closing:
            await asyncio.sleep(RECONNECT_SECS[min(attempt, len(RECONNECT_SECS) - 1)])
            if await self._listen():
                logger.info("Call control relay: listening again")
                return
            attempt += 1

    def _on_request(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            ask_id, reply, call_sid = message["id"], message["reply"], message["call_sid"]
            request = message["request"]
            if not all(isinstance(v, str) for v in (ask_id, reply, call_sid)) or not isinstance(
                request, dict
            ):
                raise TypeError("id, reply and call_sid are strings, request an object")
        except (ValueError, KeyError, TypeError) as e:
            logger.warning(f"Call control relay: a request that is not one ignored ({e})")
            return
        self._spawn(self._act(ask_id, reply, call_sid, request))

    async def _act(self, ask_id: str, reply: str, call_sid: str, request: dict[str, Any]) -> None:
        with logger.contextualize(call_sid=call_sid):
            try:
                answer = await self._holder(call_sid, request)
            except Exception:
                logger.exception("Call control relay: acting on a request failed")
                answer = (500, "the process holding the call could not act on the request")
            if answer is None:
                return  # another process holds it, or none does
            status, detail = answer
            logger.info(
                f"Call control relay: {request.get('action')} from another process: {status}"
            )
            try:
                await self._notify(
                    reply, json.dumps({"id": ask_id, "status": status, "detail": detail})
                )
            except RelayError as e:
                logger.warning(f"Call control relay: the answer was not sent: {e}")

    def _on_reply(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            answer = self._waiting.get(message["id"])
            status, detail = int(message["status"]), str(message["detail"])
        except (ValueError, KeyError, TypeError):
            logger.warning("Call control relay: an answer that is not one ignored")
            return
        if answer is not None and not answer.done():
            answer.set_result((status, detail))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
