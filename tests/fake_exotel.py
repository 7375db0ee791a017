"""A fake of Exotel's Calls/connect API (Connect Voice AI) on 127.0.0.1, for tests.

Exotel is a paid outside service, so tests point the app at this fake
(`EXOTEL_API_BASE_URL=fake.base_url`). It checks what Exotel checks: Basic auth
with the API key and token, the account SID in the path, the required fields
(`From`, `CallerId`, `StreamUrl`, `StreamType=bidirectional`) and their
documented limits, and answers with Exotel's JSON shapes.

    with FakeExotel() as exotel:
        ...  # run the app against exotel.base_url
        assert exotel.calls_placed()[0].value("From") == "+919876543210"
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import BasicAuth, web

from tests.loopback import LoopbackServer

CONNECT_PATH = re.compile(r"^/v1/Accounts/(?P<account>[^/]+)/Calls/connect(?:\.json)?$")
PHONE_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")
STATUS_EVENTS = frozenset({"answered", "terminal", "ringing"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, whatever it answered.

    Attributes:
        method: HTTP method.
        path: URL path.
        form: Form fields in order; a repeated key appears once per value.
        auth_ok: The Basic credentials were the key and token of the account in the path.
        status: The HTTP status the fake answered.
    """

    method: str
    path: str
    form: list[tuple[str, str]]
    auth_ok: bool
    status: int

    def value(self, key: str) -> str | None:
        """The first value of a form field, or None."""
        return next((v for k, v in self.form if k == key), None)

    def values(self, key: str) -> list[str]:
        """Every value of a form field, in order."""
        return [v for k, v in self.form if k == key]


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"RestException": {"Status": status, "Message": message}}


class FakeExotel(LoopbackServer):
    """Exotel's Calls/connect, served on a free loopback port from a background thread.

    Attributes:
        base_url: Where the fake listens, e.g. `http://127.0.0.1:PORT`.
        account_sid: The only account it knows.
        api_key: That account's API key (the Basic auth user).
        api_token: That key's token (the Basic auth password).
    """

    name = "fake-exotel"

    def __init__(self) -> None:
        super().__init__()
        self.account_sid = "switchboard" + secrets.token_hex(4)
        self.api_key = secrets.token_hex(12)
        self.api_token = secrets.token_hex(20)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: deque[tuple[int, str]] = deque()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def calls_placed(self) -> list[RecordedRequest]:
        """Calls/connect requests that placed a call (answered 200)."""
        return [r for r in self.requests if r.status == 200]

    def fail_next(self, status: int, message: str) -> None:
        """Answer the next valid Calls/connect with this error (queued, in order)."""
        with self._lock:
            self._failures.append((status, message))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        posted = await request.post() if request.method == "POST" else {}
        form = [(str(k), str(v)) for k, v in posted.items()]
        route = CONNECT_PATH.match(request.path)
        auth_ok = route is not None and self._authorized(
            request.headers.get("Authorization"), route["account"]
        )
        with self._lock:
            status, payload = self._answer(request.method, route, form, auth_ok)
            self._requests.append(
                RecordedRequest(request.method, request.path, form, auth_ok, status)
            )
        headers = {"WWW-Authenticate": 'Basic realm="Exotel"'} if status == 401 else None
        return web.json_response(payload, status=status, headers=headers)

    def _authorized(self, header: str | None, account: str) -> bool:
        try:
            credentials = BasicAuth.decode(header or "")
        except ValueError:
            return False
        return (
            secrets.compare_digest(credentials.login, self.api_key)
            and secrets.compare_digest(credentials.password, self.api_token)
            and account == self.account_sid
        )

    def _answer(
        self, method: str, route: re.Match[str] | None, form: list[tuple[str, str]], auth_ok: bool
    ) -> tuple[int, dict[str, Any]]:
        if route is None or method != "POST":
            return _error(404, "The requested resource was not found")
        if not auth_ok:
            return _error(401, "Authentication is required to view this resource.")
        fields = dict(form)
        for required in ("From", "CallerId", "StreamUrl", "StreamType"):
            if not fields.get(required):
                return _error(400, f"Missing parameter {required}")
        if not PHONE_NUMBER.match(fields["From"]):
            return _error(400, f"Invalid From number: {fields['From']}")
        if fields["StreamType"] != "bidirectional":
            return _error(400, "StreamType must be bidirectional")
        stream_url = fields["StreamUrl"]
        if not stream_url.startswith(("ws://", "wss://")) or len(stream_url) > 600:
            return _error(400, "StreamUrl must be a ws:// or wss:// URL of at most 600 characters")
        if len(fields.get("CustomField", "")) > 128:
            return _error(400, "CustomField is at most 128 characters")
        events = [v for k, v in form if k == "StatusCallbackEvents[]"]
        if any(event not in STATUS_EVENTS for event in events):
            return _error(400, f"Invalid StatusCallbackEvents: {events}")
        if self._failures:
            return _error(*self._failures.popleft())
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return 200, {
            "Call": {
                "Sid": secrets.token_hex(16),
                "ParentCallSid": None,
                "DateCreated": created,
                "DateUpdated": created,
                "AccountSid": self.account_sid,
                "To": fields["From"],
                "From": fields["From"],
                "PhoneNumberSid": fields["CallerId"],
                "Status": "in-progress",
                "Direction": "outbound-api",
                "CustomField": fields.get("CustomField"),
                "RecordingUrl": None,
            }
        }
