"""What the dial-out tests share: requests to the server's API, the server's settings per
provider, and `Dialout`, one provider's fake with the ways to dial through it.

    async def test_x(make_server: MakeServer, dialout: Dialout) -> None:  # once per provider
        server = dialout.server(make_server)
        status, headers, body = await dialout.dial(server, {"to": dialout.callee})
        [sent] = dialout.placed()
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp
from twilio.request_validator import RequestValidator

from dialout.placers import ExotelPlacer
from dialout.request import DialoutRequest
from dialout.twilio import TwilioCalls
from records.attempts import new_attempt_id
from simulator import ExotelCall, parse_twiml
from tests.conftest import OWN_URL, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.fake_exotel import FakeExotel
from tests.fake_rest import FakeRestApi, RecordedRequest
from tests.fake_twilio import FakeTwilio
from tests.server_thread import ServerThread

KEY = "dialout-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
OUR_NUMBER, CALLEE = "+15550001111", "+15557654321"  # with Twilio
CALLER_ID, EXOTEL_CALLEE = "+918047491899", "+919876543210"  # with Exotel
WS_USER, WS_PASSWORD = "exotel-applet", "p@ss:w/rd#1"  # must survive the URL's userinfo

ServerAnswer = tuple[int, dict[str, str], Any]  # status, headers, body (parsed when JSON)


async def http(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> ServerAnswer:
    """One HTTP request; its status, headers and body (parsed when JSON)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=json_body, data=form, headers=headers) as response,
    ):
        text = await response.text()
        body = json.loads(text) if "json" in response.content_type else text
        return response.status, dict(response.headers), body


async def latest(server: ServerThread, call_sid: str) -> dict[str, Any]:
    """`GET /calls/{call_sid}`: the call's record, which must exist."""
    status, _, body = await http("GET", f"{server.url}/calls/{call_sid}", headers=AUTH)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def post_signed(
    url: str, form: dict[str, str], token: str | None = TEST_AUTH_TOKEN, signed_for: str = ""
) -> int:
    """POST a form as Twilio does, signed with `token` (unsigned if None); the status.

    Args:
        url: Where to post.
        form: The fields.
        token: The auth token to sign with.
        signed_for: The URL Twilio signs, when not `url` (e.g. the public one).
    """
    headers = {}
    if token is not None:
        validator = RequestValidator(token)
        headers["X-Twilio-Signature"] = validator.compute_signature(signed_for or url, form)
    status, _, _ = await http("POST", url, form=form, headers=headers)
    return status


def callback_url(sent: RecordedRequest) -> str:
    """The status callback URL a placed call gave the provider."""
    return sent.value("StatusCallback") or ""


def on_server(server: ServerThread, url: str) -> str:
    """`url`'s path and query on the test server (the provider was given the public URL)."""
    parts = urlsplit(url)
    return f"{server.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def exotel_answers(sent: RecordedRequest, server: ServerThread, call_sid: str) -> ExotelCall:
    """Play Exotel once the callee picks up: open the StreamUrl it was given, as it would.

    The URL's userinfo becomes the upgrade's Basic credentials and its query string
    the start message's custom parameters.
    """
    stream_url = sent.value("StreamUrl") or ""
    parts = urlsplit(stream_url)
    return ExotelCall(
        server.url,
        ws_user=unquote(parts.username or ""),
        ws_password=unquote(parts.password or ""),
        call_sid=call_sid,
        from_number=sent.value("CallerId") or "",
        to_number=sent.value("From") or "",
        params=dict(parse_qsl(parts.query)),
    )


def twilio_settings(api_base_url: str, **overrides: Any) -> dict[str, Any]:
    """Server settings for dial-out through the Twilio API at `api_base_url`."""
    settings: dict[str, Any] = {
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_api_base_url": api_base_url,
        "twilio_phone_number": OUR_NUMBER,
        "dialout_api_key": KEY,
        "public_url": OWN_URL,
    }
    return settings | overrides


def exotel_settings(exotel: FakeExotel, **overrides: Any) -> dict[str, Any]:
    """Server settings for dial-out through the fake Exotel only: no Twilio credentials."""
    settings: dict[str, Any] = {
        "exotel_api_base_url": exotel.base_url,
        "exotel_api_key": exotel.api_key,
        "exotel_api_token": exotel.api_token,
        "exotel_account_sid": exotel.account_sid,
        "exotel_caller_id": CALLER_ID,
        "exotel_ws_username": WS_USER,
        "exotel_ws_password": WS_PASSWORD,
        "dialout_api_key": KEY,
        "public_url": OWN_URL,
    }
    return settings | overrides


class Dialout:
    """Dial-out through one provider, against its fake.

    Attributes:
        fake: The provider's fake REST API, which the server is pointed at.
        name: The provider, as `POST /dialout` names it.
        default: Whether a body that names no provider dials through it (it is then left out).
        callee: A number to call through it.
        caller_id: The server's own number with it, the default `from`.
        call_sid: What its call SIDs look like.
        first_status: The status the answer gives a call it has just accepted.
        api_setting: The setting that points the server at its REST API.
        secret_setting: The environment variable of the server's secret for it.
        wrong_secret: Settings with that secret wrong.
    """

    name: ClassVar[str]
    default: ClassVar[bool] = False
    callee: ClassVar[str]
    caller_id: ClassVar[str]
    call_sid: ClassVar[re.Pattern[str]]
    first_status: ClassVar[str]
    api_setting: ClassVar[str]
    secret_setting: ClassVar[str]
    wrong_secret: ClassVar[dict[str, str]]

    def __init__(self, fake: FakeRestApi) -> None:
        self.fake = fake

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The server's settings for dial-out through the fake."""
        raise NotImplementedError

    def server(self, make_server: MakeServer, **overrides: Any) -> ServerThread:
        """A server that dials out through the fake."""
        return make_server(**self.settings(**overrides))

    async def dial(
        self, server: ServerThread, body: dict[str, Any], headers: dict[str, str] | None = AUTH
    ) -> ServerAnswer:
        """`POST /dialout` with `body`, through this provider."""
        body = body if self.default else {"provider": self.name, **body}
        return await http("POST", f"{server.url}/dialout", json_body=body, headers=headers)

    def placed(self) -> list[RecordedRequest]:
        """The requests the fake accepted, each a placed call."""
        raise NotImplementedError

    def check_placed(self, answer: ServerAnswer) -> RecordedRequest:
        """Check the answer to a call placed from the default caller id to `callee`.

        Returns:
            The one request that placed it, which was authenticated.
        """
        status, headers, body = answer
        assert status == 201, body
        assert self.call_sid.fullmatch(body["call_sid"])
        assert body["status"] == self.first_status
        assert (body["to"], body["from"]) == (self.callee, self.caller_id)
        assert headers["Location"] == body["status_url"] == f"/calls/{body['call_sid']}"
        [sent] = self.placed()
        assert sent.auth_ok
        return sent

    def fail_next(self, status: int, code: int | None, message: str) -> None:
        """Have the fake refuse the next call with this HTTP status, error code and message."""
        raise NotImplementedError

    def urls_given(self, sent: RecordedRequest) -> list[str]:
        """The URLs a placed call tells the provider to reach the server at (stream, status)."""
        raise NotImplementedError

    def sid_of(self, sent: RecordedRequest) -> str:
        """The SID the provider gave the call a request placed."""
        raise NotImplementedError

    async def report(
        self, server: ServerThread, sent: RecordedRequest, call_sid: str, status: str, seq: int
    ) -> int:
        """Send the provider's status callback for a call to the URL it was given; the status.

        Args:
            server: The server that placed the call.
            sent: The request that placed it.
            call_sid: The provider's SID for the call.
            status: Twilio's call status (`ringing`, `in-progress`, `completed`, …).
            seq: Twilio's SequenceNumber.
        """
        raise NotImplementedError

    def reported(self, status: int, code: int | None) -> dict[str, int | None]:
        """What the server's refusal says of the provider's error, as answer fields."""
        raise NotImplementedError

    async def place_directly(self, api_base_url: str, timeout: float) -> None:  # noqa: ASYNC109
        """Place a call with the server's own client for this provider, not through the server.

        Raises:
            CallNotPlaced: As the client does.
        """
        raise NotImplementedError


class TwilioDialout(Dialout):
    """Dial-out through Twilio, the default provider."""

    fake: FakeTwilio
    name = "twilio"
    default = True
    callee, caller_id = CALLEE, OUR_NUMBER
    call_sid = re.compile(r"CA[0-9a-f]{32}")
    first_status = "queued"
    api_setting = "twilio_api_base_url"
    secret_setting = "TWILIO_AUTH_TOKEN"
    wrong_secret: ClassVar[dict[str, str]] = {"twilio_auth_token": "not-the-real-token-0123"}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return twilio_settings(self.fake.base_url, **overrides)

    def placed(self) -> list[RecordedRequest]:
        return self.fake.calls_created()

    def fail_next(self, status: int, code: int | None, message: str) -> None:
        assert code is not None, "Twilio's errors carry a code"
        self.fake.fail_next(status, code, message)

    def reported(self, status: int, code: int | None) -> dict[str, int | None]:
        return {"twilio_code": code}

    def sid_of(self, sent: RecordedRequest) -> str:
        return str(sent.body["sid"])

    def urls_given(self, sent: RecordedRequest) -> list[str]:
        stream_url, _ = parse_twiml(sent.value("Twiml") or "")
        return [stream_url, callback_url(sent)]

    async def report(
        self, server: ServerThread, sent: RecordedRequest, call_sid: str, status: str, seq: int
    ) -> int:
        form = {
            "AccountSid": TEST_ACCOUNT_SID,
            "CallSid": call_sid,
            "CallStatus": status,
            "Direction": "outbound-api",
            "From": sent.value("From") or "",
            "To": sent.value("To") or "",
            "SequenceNumber": str(seq),
        }
        url = callback_url(sent)
        return await post_signed(on_server(server, url), form, signed_for=url)

    async def place_directly(self, api_base_url: str, timeout: float) -> None:  # noqa: ASYNC109
        calls = TwilioCalls(offline_settings(**twilio_settings(api_base_url)), timeout=timeout)
        try:
            await calls.place(
                to=CALLEE, from_number=OUR_NUMBER, twiml="<Response/>", status_callback="x"
            )
        finally:
            await calls.aclose()


class ExotelDialout(Dialout):
    """Dial-out through Exotel's Connect Voice AI (`"provider": "exotel"`)."""

    fake: FakeExotel
    name = "exotel"
    callee, caller_id = EXOTEL_CALLEE, CALLER_ID
    call_sid = re.compile(r"[0-9a-f]{32}")
    first_status = "in-progress"  # what Exotel's Call object says
    api_setting = "exotel_api_base_url"
    secret_setting = "EXOTEL_API_TOKEN"
    wrong_secret: ClassVar[dict[str, str]] = {"exotel_api_token": "not-the-real-token"}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return exotel_settings(self.fake, **overrides)

    def placed(self) -> list[RecordedRequest]:
        return self.fake.calls_placed()

    def fail_next(self, status: int, code: int | None, message: str) -> None:
        assert code is None, "Exotel's errors carry no code"
        self.fake.fail_next(status, message)

    def reported(self, status: int, code: int | None) -> dict[str, int | None]:
        return {"exotel_status": status}

    def sid_of(self, sent: RecordedRequest) -> str:
        return str(sent.body["Call"]["Sid"])

    def urls_given(self, sent: RecordedRequest) -> list[str]:
        return [sent.value("StreamUrl") or "", callback_url(sent)]

    async def report(
        self, server: ServerThread, sent: RecordedRequest, call_sid: str, status: str, seq: int
    ) -> int:
        answered = status == "in-progress"
        form = {
            "CallSid": call_sid,
            "EventType": "answered" if answered else "terminal",
            "Status": status,
            "To": sent.value("From") or "",
            "PhoneNumberSid": sent.value("CallerId") or "",
            "Direction": "outbound-api",
        }
        answer, _, _ = await http("POST", on_server(server, callback_url(sent)), form=form)
        return answer

    async def place_directly(self, api_base_url: str, timeout: float) -> None:  # noqa: ASYNC109
        settings = offline_settings(**self.settings(exotel_api_base_url=api_base_url))
        placer = ExotelPlacer(settings, timeout=timeout)
        try:
            request = DialoutRequest(to=EXOTEL_CALLEE)
            await placer.prepare(request, "https://bot.example.com", new_attempt_id()).send()
        finally:
            await placer.aclose()


# By provider name; each provider's fake is the conftest fixture of that name.
DIALOUTS: dict[str, type[Dialout]] = {"twilio": TwilioDialout, "exotel": ExotelDialout}
