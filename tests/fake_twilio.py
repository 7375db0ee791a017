"""A fake of Twilio's REST API on 127.0.0.1, for tests.

Twilio is a paid outside service, so tests point the app at this fake
instead (``TWILIO_API_BASE_URL=fake.base_url``). It checks what Twilio
checks — Basic auth, the account in the path, required and well-formed
fields — and answers with Twilio's JSON shapes, so a wrong request fails
the test rather than passing against a fake that accepts anything.

    with FakeTwilio() as twilio:
        ...  # run the app against twilio.base_url
        assert twilio.calls_created()[0].value("To") == "+15550002222"
"""

from __future__ import annotations

import re
import secrets
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, ClassVar

from aiohttp import web

from tests.fake_rest import Answer, FakeRestApi, RecordedRequest
from tests.fake_twilio_recordings import FakeRecordings, recording_problem

API_VERSION = "2010-04-01"
CALLS_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls\.json$")
CALL_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls/(?P<call>[^/]+)\.json$")
RECORDINGS_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls/(?P<call>[^/]+)/Recordings\.json$"
)
MEDIA_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Recordings/(?P<recording>RE[0-9a-f]{{32}})\.wav$"
)
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
INVALID_CALL_STATE = 21220
# E.164, or a Twilio Client / SIP address, as Calls accepts for To.
PHONE_NUMBER = re.compile(r"^\+[1-9]\d{6,14}$")
ADDRESS = re.compile(r"^(client:\S+|sip:\S+@\S+)$")


def _error(status: int, code: int, message: str) -> Answer:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _now() -> str:
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


class FakeTwilio(FakeRestApi):
    """Twilio's Calls API, served on a free loopback port from a background thread.

    Attributes:
        base_url: Where the fake listens, e.g. ``http://127.0.0.1:PORT``.
        account_sid: The only account it knows.
        auth_token: That account's token.
    """

    name = "fake-twilio"
    routes: ClassVar[tuple[re.Pattern[str], ...]] = (
        CALLS_PATH,
        CALL_PATH,
        RECORDINGS_PATH,
        MEDIA_PATH,
    )
    realm: ClassVar[str] = "Twilio API"

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        super().__init__(account_sid, user=account_sid, password=self.auth_token)
        self._calls: dict[str, dict[str, Any]] = {}
        self._gone: set[str] = set()
        self._update_refusals: list[Answer] = []
        # The account's Twilio numbers and verified caller ids; a `<Dial callerId>` must be one.
        self.owned_numbers: set[str] = {"+15550002222"}
        self.recordings = FakeRecordings(self)

    # -- What tests set and read --

    def fail_next(self, status: int, code: int, message: str) -> None:
        """Answer the next Calls create with this Twilio error (queued, in order)."""
        self.queue_failure(_error(status, code, message))

    def mark_gone(self, call_sid: str) -> None:
        """Make updates to this call answer 404, as for a call Twilio no longer has."""
        with self._lock:
            self._gone.add(call_sid)

    def refuse_next_update(self, status: int, code: int, message: str) -> None:
        """Answer the next TwiML update of a call with this error (e.g. 13214, bad caller id)."""
        with self._lock:
            self._update_refusals.append(_error(status, code, message))

    def end_call(self, call_sid: str) -> None:
        """The call ended on Twilio's side: its TwiML can no longer be updated (21220)."""
        with self._lock:
            self._calls.setdefault(call_sid, self._resource(call_sid, to="", from_=""))
            self._calls[call_sid].update(status="completed", end_time=_now())

    def call_updates(self) -> list[RecordedRequest]:
        """Call updates carrying new TwiML (a transfer), whatever was answered."""
        return [
            r for r in self.requests if CALL_PATH.match(r.path) and r.value("Twiml") is not None
        ]

    def calls_created(self) -> list[RecordedRequest]:
        """Calls create requests that created a call (answered 201)."""
        return [r for r in self.requests if CALLS_PATH.match(r.path) and r.status == 201]

    def hangups(self) -> list[RecordedRequest]:
        """Call updates asking for ``Status=completed``, whatever was answered."""
        return [
            r
            for r in self.requests
            if CALL_PATH.match(r.path) and r.method == "POST" and r.value("Status") == "completed"
        ]

    # -- Serving --

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and MEDIA_PATH.match(request.path):
            return await self.recordings.media(request)
        return await super().handle(request)

    def answer(self, method: str, path: str, form: list[tuple[str, str]], auth_ok: bool) -> Answer:
        if (started := RECORDINGS_PATH.match(path)) and method == "POST":
            if not auth_ok:
                return _error(401, 20003, "Authenticate")
            if not CALL_SID.match(started["call"]) or started["call"] in self._gone:
                return _error(404, 20404, f"The requested resource {path} was not found")
            return self.recordings.start(started["call"], form)
        create, update = CALLS_PATH.match(path), CALL_PATH.match(path)
        if not (create and method == "POST") and not (update and method in ("GET", "POST")):
            return _error(404, 20404, f"The requested resource {path} was not found")
        if not auth_ok:
            return _error(401, 20003, "Authenticate")
        fields = dict(form)
        if create:
            return self._create(fields, form)
        call_sid = update["call"] if update else ""
        if not CALL_SID.match(call_sid) or call_sid in self._gone:
            return _error(404, 20404, f"The requested resource {path} was not found")
        return self._update(call_sid, fields if method == "POST" else {})

    def _create(self, fields: dict[str, str], form: list[tuple[str, str]]) -> Answer:
        to, from_ = fields.get("To", ""), fields.get("From", "")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not (PHONE_NUMBER.match(to) or ADDRESS.match(to)):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not (PHONE_NUMBER.match(from_) or from_.startswith("client:")):
            return _error(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        instructions = [key for key in ("Url", "Twiml", "ApplicationSid") if fields.get(key)]
        if not instructions:
            return _error(400, 21205, "Url parameter is required")
        if len(instructions) > 1:
            return _error(400, 21205, f"Only one of {', '.join(instructions)} may be given")
        if "Twiml" in instructions:
            try:
                ElementTree.fromstring(fields["Twiml"])
            except ElementTree.ParseError as exc:
                return _error(400, 12100, f"Document parse failure: {exc}")
        if fields.get("Record") not in (None, "true", "false"):
            return _error(400, 21219, f"Invalid Record value: {fields['Record']}")
        recorded = fields.get("Record") == "true"
        if recorded and (problem := recording_problem(form)):
            return problem
        if failure := self.queued_failure():
            return failure
        call_sid = "CA" + secrets.token_hex(16)
        if recorded:
            self.recordings.start(call_sid, form)
        self._calls[call_sid] = self._resource(call_sid, to=to, from_=from_)
        return 201, self._calls[call_sid]

    def _update(self, call_sid: str, fields: dict[str, str]) -> Answer:
        # A call the fake did not create is one Twilio delivered: an inbound call.
        call = self._calls.setdefault(
            call_sid,
            self._resource(call_sid, to="", from_="", direction="inbound", status="in-progress"),
        )
        if (twiml := fields.get("Twiml")) is not None:
            return self._redirect(call, twiml)
        status = fields.get("Status")
        if status is not None:
            if status not in ("completed", "canceled"):
                return _error(400, 21218, f"Invalid value for Status: {status}")
            call.update(status=status, end_time=_now(), date_updated=_now())
        return 200, call

    def _redirect(self, call: dict[str, Any], twiml: str) -> Answer:
        """New TwiML for a live call, checked as Twilio checks it."""
        try:
            document = ElementTree.fromstring(twiml)
        except ElementTree.ParseError as exc:
            return _error(400, 12100, f"Document parse failure: {exc}")
        if document.tag != "Response":
            return _error(400, 12102, "The root element must be Response")
        for dial in document.iter("Dial"):
            # Twilio would use the caller's own number, which it then refuses: ask for one.
            caller_id = dial.get("callerId") or ""
            if not PHONE_NUMBER.match(caller_id) or caller_id not in self.owned_numbers:
                return _error(400, 13214, f"Dial: Invalid callerId value {caller_id!r}")
            for number in dial.iter("Number"):
                if not PHONE_NUMBER.match((number.text or "").strip()):
                    return _error(400, 13223, f"Dial: Invalid phone number {number.text}")
        if call["status"] not in ("in-progress", "ringing", "queued"):
            return _error(400, INVALID_CALL_STATE, "Call is not in-progress. Cannot redirect.")
        if self._update_refusals:
            return self._update_refusals.pop(0)
        call.update(date_updated=_now())
        return 200, call

    def _resource(
        self,
        call_sid: str,
        *,
        to: str,
        from_: str,
        direction: str = "outbound-api",
        status: str = "queued",
    ) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call_sid}"
        created = _now()
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": created,
            "date_updated": created,
            "direction": direction,
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": call_sid,
            "start_time": None,
            "status": status,
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
                "streams": f"{uri}/Streams.json",
                "events": f"{uri}/Events.json",
            },
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }
