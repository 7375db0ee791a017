"""Admission control: whether this process takes one more call, and the calls it holds.

A process holds at most `MAX_CALLS` calls, and none new while it drains for a
restart. The webhook only asks (`refusal`): Twilio may open the media stream on
another replica, so no slot is held between the two. The media stream takes a
slot (`admit`) and keeps it until the call ends.

At capacity or while draining, the webhook answers `<Reject reason="busy"/>`,
the media stream closes with 1013 (try again later) and `/dialout` answers 503
with `Retry-After` (`require_capacity`).

The calls themselves (their bots) are registered here too, by call SID, for the
drain's goodbye and the active-calls gauge; `on_change` listeners hear of every
change (the gauge, and the state a worker shares with its siblings).

Behind a proxy that tries another replica when one answers 503 (the shipped
nginx configuration, `deploy/compose/nginx.conf`, which says so in the
`X-Switchboard-Proxy-Retries` request header), a refused webhook or media
stream is answered 503 instead, before anything is recorded: the proxy passes
it on, and answers the busy TwiML itself when every replica refused.

With several workers on one machine (`ops/machine.py`), a question that is
only asked (the webhook, `/readyz`, `/dialout`) is answered for the machine:
`machine_refusal` says no only when no worker has room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

from fastapi import HTTPException
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from bot import Bot
    from ops.machine import Machine

# A load balancer, or a dial-out client, should try again (elsewhere) after this long.
RETRY_AFTER_SECS = 10
# Set by a proxy that passes a 503 on to the next replica.
PROXY_RETRIES_HEADER = "x-switchboard-proxy-retries"


def proxy_retries(connection: HTTPConnection) -> bool:
    """Whether the proxy in front tries another replica when this one answers 503."""
    return connection.headers.get(PROXY_RETRIES_HEADER) == "1"


class Refusal(StrEnum):
    """Why a new call is refused."""

    DRAINING = "draining"
    AT_CAPACITY = "at capacity"


class Admission:
    """The calls this process holds against `max_calls`, and whether it is draining."""

    def __init__(self, max_calls: int) -> None:
        """Admit up to `max_calls` calls at once."""
        self.max_calls = max_calls
        self.draining = False
        self._live = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._bots: dict[str, Bot] = {}
        self._listeners: list[Callable[[Admission], None]] = []
        # The other workers of this machine, when there are (set by `server.create_app`).
        self.machine: Machine | None = None

    def on_change(self, listener: Callable[[Admission], None]) -> None:
        """Call `listener(self)` after every change of the calls or of draining."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener(self)

    @property
    def live(self) -> int:
        """How many calls hold a slot now (their media stream is open)."""
        return self._live

    @property
    def at_capacity(self) -> bool:
        """Whether every slot is taken."""
        return self._live >= self.max_calls

    @property
    def refusal(self) -> Refusal | None:
        """Why a new call would be refused now, or None when it would be taken."""
        if self.draining:
            return Refusal.DRAINING
        if self.at_capacity:
            return Refusal.AT_CAPACITY
        return None

    @property
    def machine_refusal(self) -> Refusal | None:
        """Why this machine would refuse a new call: at capacity only when every worker is."""
        refusal = self.refusal
        if refusal is Refusal.AT_CAPACITY and self.machine and self.machine.others_have_room():
            return None
        return refusal

    def try_admit(self) -> bool:
        """Take a slot for a new call, unless `refusal` says no; `release` gives it back."""
        if self.refusal is not None:
            return False
        self._live += 1
        self._idle.clear()
        self._changed()
        return True

    def release(self) -> None:
        """Give back the slot of a call that ended."""
        self._live -= 1
        if self._live <= 0:
            self._live = 0
            self._idle.set()
        self._changed()

    @contextmanager
    def admit(self) -> Iterator[bool]:
        """Hold a slot for the body of a `with` block, if one is free; yields whether it is."""
        admitted = self.try_admit()
        try:
            yield admitted
        finally:
            if admitted:
                self.release()

    def start_draining(self) -> None:
        """Refuse every new call from now on; live calls go on."""
        self.draining = True
        self._changed()

    def add(self, bot: Bot) -> None:
        """Track a call from its pipeline's start."""
        self._bots[bot.call.call_sid] = bot
        self._changed()

    def remove(self, bot: Bot) -> None:
        """Forget a call once its pipeline has ended."""
        if self._bots.get(bot.call.call_sid) is bot:
            del self._bots[bot.call.call_sid]
            self._changed()

    def bot(self, call_sid: str) -> Bot | None:
        """The bot of a live call on this process, if there is one."""
        return self._bots.get(call_sid)

    def bots(self) -> list[Bot]:
        """The live calls' bots."""
        return list(self._bots.values())

    @property
    def running(self) -> int:
        """How many calls have a running bot."""
        return len(self._bots)

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to `timeout` seconds for every call to end; return whether they did."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def require_capacity(admission: Admission) -> None:
    """Answer 503 with `Retry-After` when no call can be taken (a route dependency, see `deps`).

    Raises:
        HTTPException: 503 while draining or at capacity.
    """
    if (refusal := admission.machine_refusal) is not None:
        raise HTTPException(
            status_code=503,
            detail=f"this server takes no new calls now: {refusal}",
            headers={"Retry-After": str(RETRY_AFTER_SECS)},
        )
