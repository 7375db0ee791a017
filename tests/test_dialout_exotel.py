"""Dial-out through Exotel: POST /dialout with "provider": "exotel" against a fake Exotel API,
Exotel's status callbacks, and the placed call answered by a simulated Exotel callee."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from dialout.placers import ExotelPlacer, exotel_status_token
from dialout.placing import CallNotPlaced
from dialout.request import DialoutRequest
from simulator import ExotelCall
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.fake_exotel import FakeExotel, RecordedRequest
from tests.fake_twilio import FakeTwilio
from tests.server_thread import ServerThread
from tests.test_dialout import request

Transcribe = Callable[[bytes], str]

KEY = "dialout-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
CALLER_ID = "+918047491899"
CALLEE = "+919876543210"
WS_USER, WS_PASSWORD = "exotel-applet", "p@ss:w/rd#1"  # must survive the URL's userinfo


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture
def exotel() -> Iterator[FakeExotel]:
    with FakeExotel() as fake:
        yield fake


def exotel_settings(exotel: FakeExotel, **overrides: Any) -> dict[str, Any]:
    """Exotel dial-out only: no Twilio credentials at all."""
    settings: dict[str, Any] = {
        "exotel_api_base_url": exotel.base_url,
        "exotel_api_key": exotel.api_key,
        "exotel_api_token": exotel.api_token,
        "exotel_account_sid": exotel.account_sid,
        "exotel_caller_id": CALLER_ID,
        "exotel_ws_username": WS_USER,
        "exotel_ws_password": WS_PASSWORD,
        "dialout_api_key": KEY,
    }
    return settings | overrides


def exotel_server(make_server: MakeServer, exotel: FakeExotel, **overrides: Any) -> ServerThread:
    return make_server(**exotel_settings(exotel, **overrides))


async def dial(
    server: ServerThread, body: dict[str, Any], headers: dict[str, str] | None = AUTH
) -> tuple[int, dict[str, str], Any]:
    return await request(
        "POST", f"{server.url}/dialout", json_body={"provider": "exotel", **body}, headers=headers
    )


async def latest(server: ServerThread, call_sid: str) -> dict[str, Any]:
    status, _, body = await request("GET", f"{server.url}/calls/{call_sid}", headers=AUTH)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


# -- Placing the call ------------------------------------------------------------------


async def test_exotel_dialout_asks_connect_voice_ai_to_stream_the_call_to_ws(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server = exotel_server(make_server, exotel)
    status, headers, body = await dial(
        server,
        {
            "to": CALLEE,
            "parameters": {"customer_id": "42", "greeting": "Namaste & welcome"},
            "time_limit": 600,
            "record": True,
        },
    )
    assert status == 201, body
    assert re.fullmatch(r"[0-9a-f]{32}", body["call_sid"])
    assert body["status"] == "in-progress"  # what Exotel's Call object said
    assert (body["to"], body["from"]) == (CALLEE, CALLER_ID)
    assert headers["Location"] == body["status_url"] == f"/calls/{body['call_sid']}"

    [sent] = exotel.calls_placed()
    assert sent.auth_ok
    assert sent.path == f"/v1/Accounts/{exotel.account_sid}/Calls/connect.json"
    assert (sent.value("From"), sent.value("CallerId")) == (CALLEE, CALLER_ID)
    assert sent.value("StreamType") == "bidirectional"
    netloc = urlsplit(server.url).netloc
    assert sent.value("StreamUrl") == (
        f"ws://exotel-applet:p%40ss%3Aw%2Frd%231@{netloc}/ws"
        "?direction=outbound&customer_id=42&greeting=Namaste+%26+welcome"
    )
    assert sent.value("CustomField") == "customer_id=42&greeting=Namaste+%26+welcome"
    token = exotel_status_token(offline_settings(**exotel_settings(exotel)))
    assert sent.value("StatusCallback") == f"{server.url}/exotel/status?token={token}"
    assert sent.values("StatusCallbackEvents[]") == ["answered", "terminal"]
    assert (sent.value("TimeLimit"), sent.value("Record")) == ("600", "true")

    expected = {
        "call_sid": body["call_sid"],
        "status": "in-progress",
        "to": CALLEE,
        "from": CALLER_ID,
        "answered_by": None,
        "duration": None,
    }
    # The call's record holds more (times, transcript); the status part is this.
    assert (await latest(server, body["call_sid"])).items() >= expected.items()


async def test_public_url_and_from_name_the_stream_and_the_caller_id(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server = exotel_server(make_server, exotel, public_url="https://bot.example.com")
    status, _, body = await dial(server, {"to": CALLEE, "from": "+918000000001"})
    assert status == 201, body
    assert body["from"] == "+918000000001"
    [sent] = exotel.calls_placed()
    assert sent.value("CallerId") == "+918000000001"
    assert sent.value("StreamUrl") == (
        "wss://exotel-applet:p%40ss%3Aw%2Frd%231@bot.example.com/ws?direction=outbound"
    )
    assert (sent.value("StatusCallback") or "").startswith(
        "https://bot.example.com/exotel/status?token="
    )
    assert sent.value("CustomField") is None  # no parameters, nothing to carry


async def test_the_default_provider_is_still_twilio(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as twilio:
        server = exotel_server(
            make_server,
            exotel,
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=TEST_AUTH_TOKEN,
            twilio_api_base_url=twilio.base_url,
            twilio_phone_number="+15550001111",
        )
        status, _, body = await request(
            "POST", f"{server.url}/dialout", json_body={"to": CALLEE}, headers=AUTH
        )
        assert status == 201, body
        assert body["call_sid"].startswith("CA")
        assert len(twilio.calls_created()) == 1
    assert exotel.requests == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}, {"Authorization": f"Basic {KEY}"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_exotel_dialout_without_the_right_key_is_refused(
    make_server: MakeServer, exotel: FakeExotel, headers: dict[str, str]
) -> None:
    server = exotel_server(make_server, exotel)
    status, answer_headers, body = await dial(server, {"to": CALLEE}, headers=headers)
    assert status == 401, body
    assert answer_headers["WWW-Authenticate"] == "Bearer"
    assert exotel.requests == []


def test_dialout_may_run_on_exotel_credentials_alone() -> None:
    exotel_only = {
        "exotel_api_key": "key",
        "exotel_api_token": "token",
        "exotel_account_sid": "acct",
        "exotel_caller_id": CALLER_ID,
    }
    assert offline_settings(dialout_api_key=KEY, **exotel_only).can_dial_exotel
    with pytest.raises(ValueError, match="EXOTEL_API_KEY, EXOTEL_API_TOKEN") as refused:
        offline_settings(dialout_api_key=KEY, **(exotel_only | {"exotel_caller_id": ""}))
    assert "TWILIO_ACCOUNT_SID" in str(refused.value)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"to": "9876543210"}, "E.164"),
        ({"to": "+91 98765 43210"}, "E.164"),
        ({"to": "+०९८७६५४३२१०"}, "E.164"),  # Devanagari digits
        ({"to": CALLEE, "from": "08047491899"}, "E.164"),
        ({"to": CALLEE, "parameters": {"a": "1", "b": "2", "c": "3"}}, "at most 2 parameters"),
        ({"to": CALLEE, "parameters": {"greeting": "x" * 120}}, "CustomField limit of 128"),
        ({"to": CALLEE, "parameters": {"direction": "inbound"}}, "reserved"),
        ({"to": CALLEE, "machine_detection": "Enable"}, "no machine_detection"),
        ({"to": CALLEE, "timeout": 30}, "no timeout"),
        ({"to": CALLEE, "provider": "plivo"}, "Unknown provider 'plivo': one of twilio, exotel"),
    ],
)
async def test_bad_requests_get_422_and_exotel_is_not_asked(
    make_server: MakeServer, exotel: FakeExotel, body: dict[str, Any], complaint: str
) -> None:
    server = exotel_server(make_server, exotel)
    status, _, answer = await dial(server, body)
    assert status == 422, answer
    assert complaint in json.dumps(answer, ensure_ascii=False), answer
    assert exotel.requests == []


async def test_destinations_outside_the_allowed_prefixes_are_refused(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server = exotel_server(make_server, exotel, dialout_allowed_prefixes="+9198")
    status, _, body = await dial(server, {"to": "+918012345678"})
    assert status == 403, body
    assert "DIALOUT_ALLOWED_PREFIXES" in body["detail"]
    assert exotel.requests == []
    status, _, body = await dial(server, {"to": CALLEE})
    assert status == 201, body


# -- When Exotel says no -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exotel_status", "message", "status", "retry"),
    [
        (400, "Invalid To number: +919876543210", 422, False),
        (403, "Number is in the DND registry", 403, False),
        (429, "Too Many Requests", 503, True),
        (500, "Internal Server Error", 503, True),
        (402, "Insufficient balance", 502, False),
        (400, "StreamUrl is not reachable", 502, False),
    ],
)
async def test_exotel_errors_become_clear_answers(
    make_server: MakeServer,
    exotel: FakeExotel,
    exotel_status: int,
    message: str,
    status: int,
    retry: bool,
) -> None:
    server = exotel_server(make_server, exotel)
    exotel.fail_next(exotel_status, message)
    answer_status, headers, body = await dial(server, {"to": CALLEE})
    assert answer_status == status, body
    assert body["exotel_status"] == exotel_status
    assert message in body["detail"]
    assert ("Retry-After" in headers) is retry
    if retry:
        assert int(headers["Retry-After"]) > 0


async def test_wrong_exotel_credentials_are_the_servers_fault(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server = exotel_server(make_server, exotel, exotel_api_token="not-the-real-token")
    status, _, body = await dial(server, {"to": CALLEE})
    assert status == 502, body
    assert "EXOTEL_API_TOKEN" in body["detail"]
    [refused] = exotel.requests
    assert not refused.auth_ok and refused.status == 401


async def test_exotel_dialout_without_exotel_credentials_is_503(make_server: MakeServer) -> None:
    server = make_server(
        twilio_account_sid=TEST_ACCOUNT_SID, twilio_auth_token=TEST_AUTH_TOKEN, dialout_api_key=KEY
    )
    status, _, body = await dial(server, {"to": CALLEE})
    assert status == 503, body
    assert "EXOTEL_CALLER_ID" in body["detail"]


async def test_unreachable_exotel_is_503_with_retry_after(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    closed = socket.socket()  # bound, never listening: connections are refused
    closed.bind(("127.0.0.1", 0))
    nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    server = exotel_server(make_server, exotel, exotel_api_base_url=nobody)
    status, headers, body = await dial(server, {"to": CALLEE})
    closed.close()
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert "cannot be reached" in body["detail"]


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A port whose connections the kernel completes but no one ever answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


async def test_an_exotel_that_never_answers_is_504_without_retry(
    exotel: FakeExotel, silent_api: str
) -> None:
    settings = offline_settings(**exotel_settings(exotel, exotel_api_base_url=silent_api))
    placer = ExotelPlacer(settings, timeout=0.5)
    with pytest.raises(CallNotPlaced) as refused:
        await placer.place(DialoutRequest(to=CALLEE), "https://bot.example.com")
    assert refused.value.status == 504
    assert refused.value.retry_after is None  # the call may exist: no blind retry
    assert "may have been placed" in refused.value.detail


# -- Exotel's status callbacks -------------------------------------------------------------


async def post_exotel_status(
    server: ServerThread, fields: dict[str, str], token: str | None, *, as_json: bool = False
) -> int:
    url = f"{server.url}/exotel/status" + (f"?token={token}" if token is not None else "")
    if as_json:
        status, _, _ = await request("POST", url, json_body=fields)
    else:
        status, _, _ = await request("POST", url, form=fields)
    return status


def exotel_callback(call_sid: str, event: str, status: str, **extra: str) -> dict[str, str]:
    """A StatusCallback as Exotel documents it, with the event fields subscribed to."""
    return {
        "CallSid": call_sid,
        "EventType": event,
        "Status": status,
        "DateUpdated": "2025-01-15 14:30:45",
        "DateCreated": "2025-01-15 14:30:01",
        "To": CALLEE,
        "From": CALLEE,
        "PhoneNumberSid": CALLER_ID,
        "Direction": "outbound-api",
        "RecordingUrl": "",
        **extra,
    }


def callback_token(exotel: FakeExotel) -> str:
    return exotel_status_token(offline_settings(**exotel_settings(exotel)))


async def test_exotel_status_callbacks_keep_the_calls_latest_status(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server = exotel_server(make_server, exotel)
    token = callback_token(exotel)
    _, _, placed = await dial(server, {"to": CALLEE, "parameters": {"order": "7"}})
    sid = placed["call_sid"]
    [sent] = exotel.calls_placed()
    assert sent.value("StatusCallback") == f"{server.url}/exotel/status?token={token}"

    answered = exotel_callback(sid, "answered", "in-progress")
    assert await post_exotel_status(server, answered, token) == 204
    assert (await latest(server, sid))["status"] == "in-progress"

    ended = exotel_callback(
        sid, "terminal", "completed", ConversationDuration="42", CustomField="order=7"
    )
    assert await post_exotel_status(server, ended, None) == 403
    assert await post_exotel_status(server, ended, "0" * 32) == 403
    # Twilio's /status cannot touch an Exotel call (unsigned: this server has no Twilio token).
    twilio_form = {"CallSid": sid, "CallStatus": "busy", "SequenceNumber": "9"}
    status, _, _ = await request("POST", f"{server.url}/status", form=twilio_form)
    assert status == 204
    assert (await latest(server, sid))["status"] == "in-progress"

    assert await post_exotel_status(server, ended, token) == 204
    assert await post_exotel_status(server, answered, token) == 204  # late: changes nothing
    expected = {
        "call_sid": sid,
        "status": "completed",
        "to": CALLEE,
        "from": CALLER_ID,
        "answered_by": None,
        "duration": 42,
    }
    assert (await latest(server, sid)).items() >= expected.items()


async def test_exotel_status_callbacks_in_json_and_for_strangers(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server = exotel_server(make_server, exotel)
    token = callback_token(exotel)
    _, _, placed = await dial(server, {"to": CALLEE})
    sid = placed["call_sid"]
    busy = exotel_callback(sid, "terminal", "busy", ConversationDuration="0")
    assert await post_exotel_status(server, busy, token, as_json=True) == 204
    now = await latest(server, sid)
    assert (now["status"], now["duration"]) == ("busy", 0)

    stranger = "f" * 32
    unknown = exotel_callback(stranger, "terminal", "completed")
    assert await post_exotel_status(server, unknown, token) == 204
    status, _, _ = await request("GET", f"{server.url}/calls/{stranger}", headers=AUTH)
    assert status == 404
    assert await post_exotel_status(server, {"Status": "completed"}, token) == 400
    assert await post_exotel_status(server, {"CallSid": sid}, token) == 400


# -- The callee answers --------------------------------------------------------------------


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


async def test_the_exotel_callee_hears_the_requested_greeting(
    make_server: MakeServer, exotel: FakeExotel, transcribe: Transcribe
) -> None:
    server = exotel_server(make_server, exotel, outbound_greeting_wait_secs=0.5)
    greeting = "Good morning, this is the clinic calling about your appointment."
    status, _, placed = await dial(
        server, {"to": CALLEE, "parameters": {"greeting": greeting, "id": "7"}}
    )
    assert status == 201, placed
    [sent] = exotel.calls_placed()
    call = exotel_answers(sent, server, placed["call_sid"])
    async with call:
        await call.connect_stream(sent.value("StreamUrl") or "", call.extra_params)
        await call.wait_for_bot_audio(timeout=25)
        await call.wait_for_bot_quiet(quiet=2.0)

        [bot] = server.app.state.admission.bots()
        assert (bot.call.provider, bot.call.call_sid) == ("exotel", placed["call_sid"])
        assert bot.call.outbound
        assert bot.call.parameters == {"greeting": greeting, "id": "7"}
    assert not call.protocol_errors, call.protocol_errors
    heard = await asyncio.to_thread(transcribe, call.heard)
    assert {"clinic", "appointment"} <= words(heard), heard
