"""Dial-out, end to end: POST /dialout against a fake Twilio REST API, status callbacks,
and the placed call answered by a simulated callee who talks to the bot."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from bot import system_prompt
from dialout.twilio import CallNotPlaced, TwilioCalls
from simulator import SimulatedCall, cli, parse_twiml, read_wav, synthesize
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.fake_twilio import CALLS_PATH, FakeTwilio, RecordedRequest
from tests.server_thread import ServerThread, free_port

Transcribe = Callable[[bytes], str]

KEY = "dialout-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
OUR_NUMBER = "+15550001111"
CALLEE = "+15557654321"
SPEC = Path(__file__).resolve().parents[2] / "shared" / "twilio-openapi" / "twilio_api_v2010.json"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as fake:
        yield fake


def dialout_server(make_server: MakeServer, twilio: FakeTwilio, **overrides: Any) -> ServerThread:
    settings: dict[str, Any] = {
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_api_base_url": twilio.base_url,
        "twilio_phone_number": OUR_NUMBER,
        "dialout_api_key": KEY,
    }
    return make_server(**(settings | overrides))


async def request(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=json_body, data=form, headers=headers) as response,
    ):
        text = await response.text()
        body = json.loads(text) if "json" in response.content_type else text
        return response.status, dict(response.headers), body


async def dial(server: ServerThread, body: dict[str, Any], headers: dict[str, str] | None = AUTH):
    return await request("POST", f"{server.url}/dialout", json_body=body, headers=headers)


def created_calls(twilio: FakeTwilio) -> list[RecordedRequest]:
    return [r for r in twilio.requests if CALLS_PATH.match(r.path)]


# -- Placing the call ------------------------------------------------------------------


async def test_dialout_places_a_call_whose_twiml_streams_to_the_bot(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio)
    tricky = 'Ann <ann@example.com> & "Bob" \'s'
    status, headers, body = await dial(
        server,
        {
            "to": CALLEE,
            "parameters": {"customer_id": "42", "contact": tricky},
            "machine_detection": "Enable",
            "timeout": 25,
            "time_limit": 600,
            "record": True,
        },
    )
    assert status == 201, body
    assert re.fullmatch(r"CA[0-9a-f]{32}", body["call_sid"])
    assert body["status"] == "queued"
    assert (body["to"], body["from"]) == (CALLEE, OUR_NUMBER)
    assert headers["Location"] == body["status_url"] == f"/calls/{body['call_sid']}"

    [sent] = twilio.calls_created()
    assert sent.auth_ok
    assert sent.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json"
    assert (sent.value("To"), sent.value("From")) == (CALLEE, OUR_NUMBER)
    assert sent.value("StatusCallback") == f"{server.url}/status"
    assert sent.values("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    assert sent.value("MachineDetection") == "Enable"
    assert (sent.value("Timeout"), sent.value("TimeLimit")) == ("25", "600")
    assert sent.value("Record") == "true"
    assert sent.value("Url") is None

    document = sent.value("Twiml") or ""
    assert "&lt;ann@example.com&gt; &amp; &quot;Bob&quot;" in document  # escaped, not raw
    root = ElementTree.fromstring(document)
    [stream] = root.findall("Connect/Stream")
    assert list(root) == [root.find("Connect")]  # nothing after the stream
    assert stream.get("url") == f"wss://{urlsplit(server.url).netloc}/ws"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters == {
        "customer_id": "42",
        "contact": tricky,
        "direction": "outbound",
        "from_number": OUR_NUMBER,
        "to_number": CALLEE,
    }


async def test_public_url_names_the_stream_and_the_status_callback(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio, public_url="https://bot.example.com")
    status, _, body = await dial(server, {"to": CALLEE, "from": "+15550009999"})
    assert status == 201, body
    [sent] = twilio.calls_created()
    assert sent.value("From") == "+15550009999"
    assert sent.value("StatusCallback") == "https://bot.example.com/status"
    stream_url, _ = parse_twiml(sent.value("Twiml") or "")
    assert stream_url == "wss://bot.example.com/ws"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789abcdef"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer clé-ünïcode"},
    ],
    ids=["missing", "wrong", "longer", "not-bearer", "non-ascii"],
)
async def test_dialout_without_the_right_key_is_refused(
    make_server: MakeServer, twilio: FakeTwilio, headers: dict[str, str]
) -> None:
    server = dialout_server(make_server, twilio)
    status, answer_headers, body = await dial(server, {"to": CALLEE}, headers=headers)
    assert status == 401, body
    assert answer_headers["WWW-Authenticate"] == "Bearer"
    status, _, _ = await request("GET", f"{server.url}/calls/CA{'0' * 32}", headers=headers)
    assert status == 401
    assert twilio.requests == []


async def test_dialout_is_off_when_no_key_is_configured(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio, dialout_api_key=None)
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        status, _, body = await dial(server, {"to": CALLEE}, headers=headers)
        assert status == 401, body
        assert "DIALOUT_API_KEY" in body["detail"]
    assert twilio.requests == []


def test_an_unsafe_dialout_configuration_does_not_start() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        offline_settings(
            dialout_api_key="short",
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=TEST_AUTH_TOKEN,
        )
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        offline_settings(dialout_api_key=KEY)
    with pytest.raises(ValueError, match="number prefix"):
        offline_settings(dialout_allowed_prefixes="+1,44")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"to": "5551234567"}, "E.164"),
        ({"to": "+05551234567"}, "E.164"),
        ({"to": "+1555123456789012"}, "E.164"),
        ({"to": "+1555 123 4567"}, "E.164"),
        ({"to": "+١٥٥٥١٢٣٤٥٦٧"}, "E.164"),  # Arabic-Indic digits
        ({"to": "+15551234567\n"}, "E.164"),
        ({"to": CALLEE, "from": "client:alice"}, "E.164"),
        ({}, "to"),
        ({"to": CALLEE, "parameters": {"direction": "inbound"}}, "reserved"),
        ({"to": CALLEE, "parameters": {"to_number": "+15550000000"}}, "reserved"),
        ({"to": CALLEE, "parameters": {"bad name": "x"}}, "parameter name"),
        ({"to": CALLEE, "parameters": {"n" * 65: "x"}}, "parameter name"),
        ({"to": CALLEE, "parameters": {"note": "x" * 1001}}, "over 1000"),
        ({"to": CALLEE, "parameters": {"note": "bell\x07"}}, "control characters"),
        ({"to": CALLEE, "parameters": {f"p{i}": "x" for i in range(33)}}, "at most 32"),
        ({"to": CALLEE, "parameters": {"customer_id": 42}}, "string"),
        ({"to": CALLEE, "machine_detection": "yes"}, "Enable"),
        ({"to": CALLEE, "timeout": 1}, "greater than or equal to 5"),
        ({"to": CALLEE, "time_limit": 0}, "greater than or equal to 1"),
        ({"to": CALLEE, "url": "https://attacker.example/twiml"}, "Extra inputs"),
        ({"to": CALLEE, "parameters": {f"p{i}": "x" * 950 for i in range(5)}}, "4000"),
    ],
)
async def test_bad_requests_get_422_and_twilio_is_not_asked(
    make_server: MakeServer, twilio: FakeTwilio, body: dict[str, Any], complaint: str
) -> None:
    server = dialout_server(make_server, twilio)
    status, _, answer = await dial(server, body)
    assert status == 422, answer
    assert complaint in json.dumps(answer, ensure_ascii=False), answer
    assert twilio.requests == []


async def test_no_caller_id_anywhere_is_a_clear_422(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio, twilio_phone_number=None)
    status, _, body = await dial(server, {"to": CALLEE})
    assert status == 422
    assert "TWILIO_PHONE_NUMBER" in body["detail"]
    assert twilio.requests == []


async def test_destinations_outside_the_allowed_prefixes_are_refused(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio, dialout_allowed_prefixes="+44, +1555")
    for number in ("+33612345678", "+12125550123"):
        status, _, body = await dial(server, {"to": number})
        assert status == 403, body
        assert "DIALOUT_ALLOWED_PREFIXES" in body["detail"]
    assert twilio.requests == []
    for number in ("+447700900123", "+15551234567"):
        status, _, body = await dial(server, {"to": number})
        assert status == 201, body
    assert len(twilio.calls_created()) == 2


# -- When Twilio says no -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("twilio_status", "code", "message", "status", "retry"),
    [
        (400, 21211, "Invalid 'To' Phone Number: +15557654321", 422, False),
        (400, 21214, "'To' phone number cannot be reached", 422, False),
        (400, 21217, "Phone number does not appear to be valid", 422, False),
        (400, 21215, "Geo Permission configuration is not permitting call", 403, False),
        (429, 20429, "Too Many Requests", 503, True),
        (500, 20500, "Internal Server Error", 503, True),
        (400, 21210, "'From' phone number not verified", 502, False),
    ],
)
async def test_twilio_errors_become_clear_answers(
    make_server: MakeServer,
    twilio: FakeTwilio,
    twilio_status: int,
    code: int,
    message: str,
    status: int,
    retry: bool,
) -> None:
    server = dialout_server(make_server, twilio)
    twilio.fail_next(twilio_status, code, message)
    answer_status, headers, body = await dial(server, {"to": CALLEE})
    assert answer_status == status, body
    assert body["twilio_code"] == code
    assert message in body["detail"]
    assert "\x1b" not in body["detail"]  # no terminal colours from TwilioRestException
    assert ("Retry-After" in headers) is retry
    if retry:
        assert int(headers["Retry-After"]) > 0


async def test_wrong_twilio_credentials_are_the_servers_fault(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio, twilio_auth_token="not-the-real-token-0123")
    status, _, body = await dial(server, {"to": CALLEE})
    assert status == 502, body
    assert body["twilio_code"] == 20003
    assert "TWILIO_AUTH_TOKEN" in body["detail"]
    [refused] = twilio.requests
    assert not refused.auth_ok and refused.status == 401


async def test_unreachable_twilio_is_503_with_retry_after(make_server: MakeServer) -> None:
    # A bound socket that never listens: connections are refused, and no one else gets the port.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    server = make_server(
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
        twilio_api_base_url=nobody,
        twilio_phone_number=OUR_NUMBER,
        dialout_api_key=KEY,
    )
    status, headers, body = await dial(server, {"to": CALLEE})
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert "cannot be reached" in body["detail"]
    closed.close()


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


async def test_a_twilio_that_never_answers_is_504_without_retry(silent_api: str) -> None:
    settings = offline_settings(
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
        twilio_api_base_url=silent_api,
    )
    calls = TwilioCalls(settings, timeout=0.5)
    try:
        with pytest.raises(CallNotPlaced) as refused:
            await calls.place(
                to=CALLEE, from_number=OUR_NUMBER, twiml="<Response/>", status_callback="x"
            )
    finally:
        await calls.aclose()
    assert refused.value.status == 504
    assert refused.value.retry_after is None  # the call may exist: no blind retry
    assert "may have been placed" in refused.value.detail


# -- Status callbacks ---------------------------------------------------------------------


async def post_status(
    server: ServerThread, form: dict[str, str], token: str | None = TEST_AUTH_TOKEN
) -> int:
    url = f"{server.url}/status"
    headers = {}
    if token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, form)
    status, _, _ = await request("POST", url, form=form, headers=headers)
    return status


def callback(call_sid: str, status: str, sequence: int, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": OUR_NUMBER,
        "To": CALLEE,
        "SequenceNumber": str(sequence),
        "CallbackSource": "call-progress-events",
        **extra,
    }


async def test_status_callbacks_keep_each_placed_calls_latest_status(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio)
    _, _, placed = await dial(server, {"to": CALLEE, "machine_detection": "Enable"})
    sid = placed["call_sid"]
    status_url = f"{server.url}/calls/{sid}"

    async def latest() -> dict[str, Any]:
        status, _, body = await request("GET", status_url, headers=AUTH)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    assert (await latest())["status"] == "queued"
    assert await post_status(server, callback(sid, "initiated", 0)) == 204
    assert await post_status(server, callback(sid, "ringing", 1)) == 204
    assert (await latest())["status"] == "ringing"
    answered = callback(sid, "in-progress", 2, AnsweredBy="human")
    assert await post_status(server, answered) == 204
    assert await post_status(server, callback(sid, "ringing", 1)) == 204  # late, out of order
    now = await latest()
    assert (now["status"], now["answered_by"]) == ("in-progress", "human")

    forged = callback(sid, "completed", 3, CallDuration="1")
    assert await post_status(server, forged, token=None) == 403
    assert await post_status(server, forged, token="someone-elses-token") == 403
    assert (await latest())["status"] == "in-progress"

    assert await post_status(server, callback(sid, "completed", 3, CallDuration="42")) == 204
    assert (await latest()).items() >= {
        "call_sid": sid,
        "status": "completed",
        "to": CALLEE,
        "from": OUR_NUMBER,
        "answered_by": "human",
        "duration": 42,
    }.items()


async def test_status_of_calls_this_server_did_not_place(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = dialout_server(make_server, twilio)
    stranger = "CA" + "5" * 32
    assert await post_status(server, callback(stranger, "ringing", 1)) == 204
    status, _, body = await request("GET", f"{server.url}/calls/{stranger}", headers=AUTH)
    assert status == 404, body
    assert await post_status(server, {"CallStatus": "ringing"}) == 400
    assert (
        await post_status(server, callback(stranger, "ringing", 1) | {"SequenceNumber": "x"}) == 204
    )


# -- Twilio's published description of the Calls API ------------------------------------


def check_create_call(spec: dict[str, Any], sent: RecordedRequest) -> list[str]:
    """What is wrong with `sent` as a `CreateCall` request, per Twilio's OpenAPI spec."""
    problems: list[str] = []
    path = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
    operation = spec["paths"][path]["post"]
    template = re.escape(path).replace(re.escape("{AccountSid}"), "(?P<AccountSid>[^/]+)")
    match = re.fullmatch(template, sent.path)
    if sent.method != "POST" or match is None:
        return [f"{sent.method} {sent.path} is not {path}"]
    for parameter in operation["parameters"]:
        if parameter["in"] == "path":
            value, schema = match[parameter["name"]], parameter["schema"]
            if not re.fullmatch(schema["pattern"], value) or len(value) != schema["maxLength"]:
                problems.append(f"path {parameter['name']}={value!r} breaks {schema}")
    schemes = spec["components"]["securitySchemes"]
    [requirement] = operation["security"]
    [scheme] = [schemes[name] for name in requirement]
    if (scheme["type"], scheme["scheme"]) != ("http", "basic") or not sent.auth_ok:
        problems.append("not authenticated with the account's Basic credentials")
    content = operation["requestBody"]["content"]
    if list(content) != ["application/x-www-form-urlencoded"] or not sent.form:
        problems.append("the body is not form-encoded")  # the fake parses only form bodies
    schema = content["application/x-www-form-urlencoded"]["schema"]
    properties: dict[str, dict[str, Any]] = schema["properties"]
    names = [name for name, _ in sent.form]
    problems += [
        f"required field {name} missing" for name in schema["required"] if name not in names
    ]
    for name in dict.fromkeys(names):
        if name not in properties:
            problems.append(f"unknown field {name}")
            continue
        values = sent.values(name)
        field = properties[name]
        if field["type"] == "array":
            field = field["items"]
        elif len(values) > 1:
            problems.append(f"{name} repeated but not an array")
        for value in values:
            problems += [f"{name}={value!r}: {p}" for p in check_value(field, value)]
    instructions = [name for name in ("Twiml", "Url", "ApplicationSid") if name in names]
    if instructions not in (["Twiml"], ["Url"]):
        problems.append(f"needs exactly one of Twiml or Url, has {instructions}")
    return problems


def check_value(schema: dict[str, Any], value: str) -> list[str]:
    kind, fmt = schema["type"], schema.get("format")
    if kind == "integer" and not re.fullmatch(r"-?[0-9]+", value):
        return ["not an integer"]
    if kind == "boolean" and value not in ("true", "false"):
        return ["not a boolean"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"not one of {schema['enum']}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"does not match {schema['pattern']}"]
    if fmt == "uri" and not (
        urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc
    ):
        return ["not an absolute http(s) URI"]
    if fmt == "endpoint" and not re.fullmatch(r"\+[1-9][0-9]{1,14}|client:\S+|sip:\S+", value):
        return ["not a phone number, client: or sip: address"]
    if fmt == "twiml":
        if len(value) > 4000:
            return ["TwiML over 4,000 characters"]
        try:
            ElementTree.fromstring(value)
        except ElementTree.ParseError as e:
            return [f"TwiML is not XML: {e}"]
    return []


@pytest.fixture(scope="module")
def twilio_spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"Twilio's OpenAPI description is not at {SPEC} (it lives in ../shared)")
    return json.loads(SPEC.read_text())  # type: ignore[no-any-return]


def test_the_spec_check_catches_what_twilio_would_refuse(twilio_spec: dict[str, Any]) -> None:
    path = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json"
    good = [("To", CALLEE), ("From", OUR_NUMBER), ("Twiml", "<Response/>")]
    assert check_create_call(twilio_spec, RecordedRequest("POST", path, good, True, 201)) == []
    for form, auth_ok in [
        (good[:1] + good[2:], True),  # no From
        ([*good, ("Url", "https://example.com/x")], True),  # both Twiml and Url
        ([*good, ("Colour", "blue")], True),
        ([*good, ("Timeout", "soon")], True),
        ([*good, ("To", "+15550000000")], True),
        ([*good, ("StatusCallbackMethod", "PUT")], True),
        (good, False),
    ]:
        recorded = RecordedRequest("POST", path, form, auth_ok, 201)
        assert check_create_call(twilio_spec, recorded), form


async def test_the_rest_request_conforms_to_twilios_openapi_description(
    make_server: MakeServer, twilio: FakeTwilio, twilio_spec: dict[str, Any]
) -> None:
    server = dialout_server(make_server, twilio, public_url="https://bot.example.com")
    for body in (
        {"to": CALLEE},
        {
            "to": CALLEE,
            "from": "+15550009999",
            "parameters": {"customer_id": "42", "campaign": "spring <sale> & more"},
            "machine_detection": "DetectMessageEnd",
            "timeout": 30,
            "time_limit": 900,
            "record": False,
        },
    ):
        status, _, answer = await dial(server, body)
        assert status == 201, answer
    sent = created_calls(twilio)
    assert len(sent) == 2
    for recorded in sent:
        assert check_create_call(twilio_spec, recorded) == []


# -- The callee answers -------------------------------------------------------------------


async def answer(server: ServerThread, twilio: FakeTwilio, call_sid: str) -> SimulatedCall:
    """Play Twilio once the callee picks up: open the stream the call's TwiML names."""
    [sent] = twilio.calls_created()
    stream_url, parameters = parse_twiml(sent.value("Twiml") or "")
    call = SimulatedCall(
        server.url,
        auth_token=TEST_AUTH_TOKEN,
        account_sid=TEST_ACCOUNT_SID,
        call_sid=call_sid,
        from_number=OUR_NUMBER,
        to_number=CALLEE,
    )
    await call.connect_stream(stream_url, parameters)
    return call


async def test_the_callee_says_hello_and_hears_the_requested_greeting(
    make_server: MakeServer, twilio: FakeTwilio, transcribe: Transcribe
) -> None:
    # The silence wait is the longest allowed: a greeting heard sooner answers the hello.
    server = dialout_server(make_server, twilio, outbound_greeting_wait_secs=30)
    greeting = "Hello, this is the dental office calling about your appointment."
    status, _, placed = await dial(
        server,
        {"to": CALLEE, "parameters": {"greeting": greeting, "customer_id": "4242"}},
    )
    assert status == 201, placed
    hello = await asyncio.to_thread(synthesize, "Hello? Who is this?")
    call = await answer(server, twilio, placed["call_sid"])
    async with call:
        said_at = await call.say(hello)
        await call.wait_for_bot_audio(after=said_at, timeout=25)
        await call.wait_for_bot_quiet(quiet=1.5)
        heard = transcribe(call.heard)

        bots = server.app.state.admission.bots()
        assert [bot.call.call_sid for bot in bots] == [placed["call_sid"]]
        [bot] = bots
        assert bot.call.outbound
        assert bot.call.parameters == {"greeting": greeting, "customer_id": "4242"}
        assert "customer_id=4242" in system_prompt(bot.call, server.app.state.settings)
    assert {"dental", "appointment"} <= words(heard), heard
    assert "heard" not in words(heard), heard  # the hello was answered by the greeting alone


async def test_a_silent_callee_is_greeted_after_the_wait(
    make_server: MakeServer, twilio: FakeTwilio, transcribe: Transcribe
) -> None:
    server = dialout_server(make_server, twilio, outbound_greeting_wait_secs=0.5)
    status, _, placed = await dial(server, {"to": CALLEE})
    assert status == 201, placed
    call = await answer(server, twilio, placed["call_sid"])
    async with call:
        await call.wait_for_bot_audio(timeout=25)
        await call.wait_for_bot_quiet(quiet=1.5)
        greeting = transcribe(call.heard)
        assert {"repeat", "goodbye"} <= words(greeting), greeting

        heard_before = len(call.heard)
        said_at = await call.say(await asyncio.to_thread(synthesize, "My cat is called Pepper."))
        await call.wait_for_bot_audio(after=said_at, timeout=25)
        await call.wait_for_bot_quiet(quiet=1.5)
        reply = transcribe(call.heard[heard_before:])
    assert "heard" in words(reply), reply  # after the greeting, the agent answers as usual


# -- The simulator's --dialout ------------------------------------------------------------


def test_the_simulator_places_a_dialout_and_plays_the_callee(
    make_server: MakeServer,
    transcribe: Transcribe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls_api = f"http://127.0.0.1:{free_port()}"  # the simulator serves Twilio's Calls API
    server = make_server(
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
        twilio_api_base_url=calls_api,
        twilio_phone_number=OUR_NUMBER,
        dialout_api_key=KEY,
        outbound_greeting_wait_secs=30,
    )
    out = tmp_path / "heard.wav"
    argv = ["--url", server.url, "--dialout", "--to", CALLEE, "--twilio-api", calls_api]
    argv += ["--api-key", KEY, "--auth-token", TEST_AUTH_TOKEN, "--out", str(out)]
    argv += ["--param", "greeting=Good morning, this is your pharmacy calling."]
    argv += ["--say", "Hello?", "--reply-timeout", "25", "--hangup-after", "0.5"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    heard = transcribe(read_wav(out))
    assert {"morning", "pharmacy"} <= words(heard), (heard, printed)

    [call_sid] = set(re.findall(r"CA[0-9a-f]{32}", printed))

    async def latest() -> tuple[int, Any]:
        status, _, body = await request("GET", f"{server.url}/calls/{call_sid}", headers=AUTH)
        return status, body

    status, record = asyncio.run(latest())
    assert status == 200
    expected = {
        "call_sid": call_sid,
        "status": "completed",  # the simulator sent Twilio's signed status callbacks
        "to": CALLEE,
        "from": OUR_NUMBER,
        "answered_by": None,
        "duration": None,
    }
    # The call's record holds more (times, transcript); the status part is this.
    assert record.items() >= expected.items()


def test_the_simulator_reports_a_refused_dialout(
    make_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    calls_api = f"http://127.0.0.1:{free_port()}"
    server = make_server(
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
        twilio_api_base_url=calls_api,
        dialout_api_key=KEY,
    )
    argv = ["--url", server.url, "--dialout", "--twilio-api", calls_api, "--api-key", "wrong"]
    assert cli.main([*argv, "--to", CALLEE]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert cli.main([*argv, "--to", CALLEE, "--twilio-api", "https://api.twilio.com"]) == 1
    assert "127.0.0.1" in capsys.readouterr().err
