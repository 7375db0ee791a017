"""What the fakes of the telephony REST APIs share: Basic auth per account, every request
recorded with what it was answered, and errors and faults queued by the test.

A fault hits a request that succeeds (a call is placed): its answer comes late, or the
connection drops before it, as when the network fails after the provider acted.

A subclass names its routes (each with an `account` group), its Basic credentials
and its realm, and answers each request in `answer`:

    class FakeProvider(FakeRestApi):
        routes = (re.compile(r"^/v1/Accounts/(?P<account>[^/]+)/Calls$"),)
        realm = "Provider"

        def answer(self, method, path, form, auth_ok):
            if not auth_ok:
                return 401, {"message": "Authenticate"}
            return self.queued_failure() or (200, {...})
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from aiohttp import BasicAuth, web

from tests.loopback import LoopbackServer

Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Fault:
    """What goes wrong with the answer to a request that succeeded.

    Attributes:
        delay: Seconds before answering (past the client's timeout: a timeout).
        drop: Drop the connection instead of answering (after `delay`).
    """

    delay: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, whatever it answered.

    Attributes:
        method: HTTP method.
        path: URL path, e.g. ``/2010-04-01/Accounts/AC…/Calls.json``.
        form: Form fields in order; a repeated key appears once per value.
        auth_ok: The Basic credentials were right for the account in the path.
        status: The HTTP status the fake answered.
        body: The JSON body it answered (or would have, had a fault not dropped it).
    """

    method: str
    path: str
    form: list[tuple[str, str]]
    auth_ok: bool
    status: int
    body: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> str | None:
        """The first value of a form field, or None."""
        return next((v for k, v in self.form if k == key), None)

    def values(self, key: str) -> list[str]:
        """Every value of a form field, in order."""
        return [v for k, v in self.form if k == key]


class FakeRestApi(LoopbackServer):
    """A provider's REST API on a free loopback port: auth, recording and queued failures.

    Attributes:
        base_url: Where the fake listens, e.g. ``http://127.0.0.1:PORT``.
        account_sid: The only account it knows.
    """

    routes: ClassVar[tuple[re.Pattern[str], ...]] = ()
    realm: ClassVar[str] = "API"

    def __init__(self, account_sid: str, user: str, password: str) -> None:
        """Prepare the fake; it serves once started.

        Args:
            account_sid: The account that must be named in the path.
            user: That account's Basic auth user.
            password: That user's Basic auth password.
        """
        super().__init__()
        self.account_sid = account_sid
        self._user, self._password = user, password
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: deque[Answer] = deque()
        self._faults: deque[Fault] = deque()
        # Called (in the fake's thread) when a request succeeds, before it is answered.
        self.on_success: Callable[[RecordedRequest], None] | None = None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def queue_failure(self, answer: Answer) -> None:
        """Give this error answer to the next request that would otherwise succeed."""
        with self._lock:
            self._failures.append(answer)

    def queue_fault(self, fault: Fault) -> None:
        """Give this fault to the next request that succeeds (the call is placed all the same)."""
        with self._lock:
            self._faults.append(fault)

    def queued_failure(self) -> Answer | None:
        """The oldest error queued by `queue_failure`, now taken; None when there is none.

        Called by `answer` (under the lock) once the request has passed every check.
        """
        return self._failures.popleft() if self._failures else None

    def answer(self, method: str, path: str, form: list[tuple[str, str]], auth_ok: bool) -> Answer:
        """The status and JSON body for one request (called under the lock)."""
        raise NotImplementedError

    async def read_form(self, request: web.Request) -> list[tuple[str, str]]:
        """The request's form fields in order: an urlencoded body's, else none."""
        if request.content_type != "application/x-www-form-urlencoded":
            return []
        return parse_qsl(await request.text(), keep_blank_values=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await self.read_form(request)
        route = next((m for p in self.routes if (m := p.match(request.path))), None)
        auth_ok = route is not None and self._authorized(
            request.headers.get("Authorization"), route["account"]
        )
        with self._lock:
            status, payload = self.answer(request.method, request.path, form, auth_ok)
            recorded = RecordedRequest(request.method, request.path, form, auth_ok, status, payload)
            self._requests.append(recorded)
            fault = self._faults.popleft() if status < 400 and self._faults else None
        if status < 400 and self.on_success is not None:
            self.on_success(recorded)
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.drop and request.transport is not None:
                request.transport.abort()  # no answer at all: the client sees the connection drop
        headers = {"WWW-Authenticate": f'Basic realm="{self.realm}"'} if status == 401 else None
        return web.json_response(payload, status=status, headers=headers)

    def _authorized(self, header: str | None, account: str) -> bool:
        try:
            credentials = BasicAuth.decode(header or "")
        except ValueError:
            return False
        return (
            secrets.compare_digest(credentials.login, self._user)
            and secrets.compare_digest(credentials.password, self._password)
            and account == self.account_sid
        )
