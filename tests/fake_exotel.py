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
from datetime import UTC, datetime
from typing import ClassVar

from aiohttp import web

from tests.fake_rest import Answer, FakeRestApi, RecordedRequest

CONNECT_PATH = re.compile(r"^/v1/Accounts/(?P<account>[^/]+)/Calls/connect(?:\.json)?$")
PHONE_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")
STATUS_EVENTS = frozenset({"answered", "terminal", "ringing"})


def _error(status: int, message: str) -> Answer:
    return status, {"RestException": {"Status": status, "Message": message}}


class FakeExotel(FakeRestApi):
    """Exotel's Calls/connect, served on a free loopback port from a background thread.

    Attributes:
        base_url: Where the fake listens, e.g. `http://127.0.0.1:PORT`.
        account_sid: The only account it knows.
        api_key: That account's API key (the Basic auth user).
        api_token: That key's token (the Basic auth password).
    """

    name = "fake-exotel"
    routes: ClassVar[tuple[re.Pattern[str], ...]] = (CONNECT_PATH,)
    realm: ClassVar[str] = "Exotel"

    def __init__(self) -> None:
        self.api_key = secrets.token_hex(12)
        self.api_token = secrets.token_hex(20)
        super().__init__(
            "switchboard" + secrets.token_hex(4), user=self.api_key, password=self.api_token
        )

    def calls_placed(self) -> list[RecordedRequest]:
        """Calls/connect requests that placed a call (answered 200)."""
        return [r for r in self.requests if r.status == 200]

    def fail_next(self, status: int, message: str) -> None:
        """Answer the next valid Calls/connect with this error (queued, in order)."""
        self.queue_failure(_error(status, message))

    async def read_form(self, request: web.Request) -> list[tuple[str, str]]:
        """A POST's form fields in order, urlencoded or multipart; a GET has none."""
        posted = await request.post() if request.method == "POST" else {}
        return [(str(k), str(v)) for k, v in posted.items()]

    def answer(self, method: str, path: str, form: list[tuple[str, str]], auth_ok: bool) -> Answer:
        if not CONNECT_PATH.match(path) or method != "POST":
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
        if failure := self.queued_failure():
            return failure
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
