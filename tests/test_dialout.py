"""Dial-out through each provider: `POST /dialout` refused for a missing key, a bad request,
a destination outside the allow-list, and the provider's errors made clear answers.

What only one provider does is in test_dialout_twilio.py (and, against Twilio's OpenAPI
description, test_dialout_twilio_spec.py) and test_dialout_exotel.py; status callbacks
are in test_dialout_status.py.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from dialout.placing import CallNotPlaced
from tests.conftest import MakeServer
from tests.dialout_providers import (
    AUTH,
    CALLEE,
    DIALOUTS,
    EXOTEL_CALLEE,
    KEY,
    Dialout,
    http,
)
from tests.ops_helpers import readiness


@pytest.fixture(params=list(DIALOUTS))
def dialout(request: pytest.FixtureRequest) -> Dialout:
    """Dial-out through each provider in turn, against the fake of its REST API."""
    return DIALOUTS[request.param](request.getfixturevalue(request.param))


def through(provider: str, *cases: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Cases of a test parametrised on `dialout` (indirect) for one provider."""
    return [(provider, *case) for case in cases]


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
    make_server: MakeServer, dialout: Dialout, headers: dict[str, str]
) -> None:
    server = dialout.server(make_server)
    status, answer_headers, body = await dialout.dial(server, {"to": dialout.callee}, headers)
    assert status == 401, body
    assert answer_headers["WWW-Authenticate"] == "Bearer"
    status, _, _ = await http("GET", f"{server.url}/calls/CA{'0' * 32}", headers=headers)
    assert status == 401
    assert dialout.fake.requests == []


async def test_dialout_is_off_when_no_key_is_configured(
    make_server: MakeServer, dialout: Dialout
) -> None:
    server = dialout.server(make_server, dialout_api_key=None)
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        status, _, body = await dialout.dial(server, {"to": dialout.callee}, headers)
        assert status == 401, body
        assert "DIALOUT_API_KEY" in body["detail"]
    assert dialout.fake.requests == []


@pytest.mark.parametrize("provider", ["twilio", "exotel"])
async def test_the_key_alone_opens_the_api_and_dials_nothing(
    make_server: MakeServer, provider: str
) -> None:
    # An offline server with no provider: the key opens /calls and the console, and
    # dial-out says what it lacks instead of the server refusing to start.
    server = make_server(dialout_api_key=KEY)
    status, _, body = await http(
        "POST",
        f"{server.url}/dialout",
        json_body={"provider": provider, "to": CALLEE},
        headers=AUTH,
    )
    assert status == 503, body
    assert "credentials" in body["detail"] or "EXOTEL_API_KEY" in body["detail"], body
    status, _, page = await http("GET", f"{server.url}/calls", headers=AUTH)
    assert status == 200 and page["total"] == 0, page
    ready, why = await readiness(server.url)
    assert ready == 200, why


@pytest.mark.parametrize(
    ("dialout", "body", "complaint"),
    through(
        "twilio",
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
    )
    + through(
        "exotel",
        ({"to": "9876543210"}, "E.164"),
        ({"to": "+91 98765 43210"}, "E.164"),
        ({"to": "+०९८७६५४३२१०"}, "E.164"),  # Devanagari digits
        ({"to": EXOTEL_CALLEE, "from": "08047491899"}, "E.164"),
        (
            {"to": EXOTEL_CALLEE, "parameters": {"a": "1", "b": "2", "c": "3"}},
            "at most 2 parameters",
        ),
        ({"to": EXOTEL_CALLEE, "parameters": {"greeting": "x" * 120}}, "CustomField limit of 128"),
        ({"to": EXOTEL_CALLEE, "parameters": {"direction": "inbound"}}, "reserved"),
        ({"to": EXOTEL_CALLEE, "machine_detection": "Enable"}, "no machine_detection"),
        ({"to": EXOTEL_CALLEE, "timeout": 30}, "no timeout"),
        (
            {"to": EXOTEL_CALLEE, "provider": "plivo"},
            "Unknown provider 'plivo': one of twilio, exotel",
        ),
    ),
    indirect=["dialout"],
)
async def test_bad_requests_get_422_and_the_provider_is_not_asked(
    make_server: MakeServer, dialout: Dialout, body: dict[str, Any], complaint: str
) -> None:
    server = dialout.server(make_server)
    status, _, answer = await dialout.dial(server, body)
    assert status == 422, answer
    assert complaint in json.dumps(answer, ensure_ascii=False), answer
    assert dialout.fake.requests == []


@pytest.mark.parametrize(
    ("dialout", "prefixes", "refused", "allowed"),
    [
        (
            "twilio",
            "+44, +1555",
            ["+33612345678", "+12125550123"],
            ["+447700900123", "+15551234567"],
        ),
        ("exotel", "+9198", ["+918012345678"], [EXOTEL_CALLEE]),
    ],
    indirect=["dialout"],
)
async def test_destinations_outside_the_allowed_prefixes_are_refused(
    make_server: MakeServer,
    dialout: Dialout,
    prefixes: str,
    refused: list[str],
    allowed: list[str],
) -> None:
    server = dialout.server(make_server, dialout_allowed_prefixes=prefixes)
    for number in refused:
        status, _, body = await dialout.dial(server, {"to": number})
        assert status == 403, body
        assert "DIALOUT_ALLOWED_PREFIXES" in body["detail"]
    assert dialout.fake.requests == []
    for number in allowed:
        status, _, body = await dialout.dial(server, {"to": number})
        assert status == 201, body
    assert len(dialout.placed()) == len(allowed)


async def test_the_providers_are_told_public_url_never_the_requests_host(
    make_server: MakeServer, dialout: Dialout
) -> None:
    server = dialout.server(make_server)
    crafted = AUTH | {"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"}
    status, _, body = await dialout.dial(server, {"to": dialout.callee}, crafted | {"Host": "x.y"})
    assert status == 201, body
    [sent] = dialout.placed()
    own = urlsplit(server.url).netloc
    assert [urlsplit(url).hostname for url in dialout.urls_given(sent)] == ["127.0.0.1"] * 2
    assert all(own in url for url in dialout.urls_given(sent))

    # Settings refuse dial-out without PUBLIC_URL at start-up; a server that got such
    # settings anyway refuses to dial rather than trust the request, and is not ready.
    settings = server.app.state.settings
    server.app.state.settings = settings.model_copy(update={"public_url": None})
    status, _, body = await dialout.dial(server, {"to": dialout.callee}, crafted)
    assert status == 503, body
    assert "PUBLIC_URL" in body["detail"]
    assert len(dialout.placed()) == 1
    status, ready = await readiness(server.url)
    assert status == 503
    assert "PUBLIC_URL" in ready["reasons"]["configuration"]


# -- When the provider says no ------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialout", "provider_status", "code", "message", "status", "retry"),
    through(
        "twilio",
        (400, 21211, "Invalid 'To' Phone Number: +15557654321", 422, False),
        (400, 21214, "'To' phone number cannot be reached", 422, False),
        (400, 21217, "Phone number does not appear to be valid", 422, False),
        (400, 21215, "Geo Permission configuration is not permitting call", 403, False),
        (429, 20429, "Too Many Requests", 503, True),
        (500, 20500, "Internal Server Error", 503, True),
        (400, 21210, "'From' phone number not verified", 502, False),
    )
    + through(
        "exotel",
        (400, None, "Invalid To number: +919876543210", 422, False),
        (403, None, "Number is in the DND registry", 403, False),
        (429, None, "Too Many Requests", 503, True),
        (500, None, "Internal Server Error", 503, True),
        (402, None, "Insufficient balance", 502, False),
        (400, None, "StreamUrl is not reachable", 502, False),
    ),
    indirect=["dialout"],
)
async def test_provider_errors_become_clear_answers(
    make_server: MakeServer,
    dialout: Dialout,
    provider_status: int,
    code: int | None,
    message: str,
    status: int,
    retry: bool,
) -> None:
    server = dialout.server(make_server)
    dialout.fail_next(provider_status, code, message)
    answer_status, headers, body = await dialout.dial(server, {"to": dialout.callee})
    assert answer_status == status, body
    assert body.items() >= dialout.reported(provider_status, code).items()
    assert message in body["detail"]
    assert "\x1b" not in body["detail"]  # no terminal colours from TwilioRestException
    assert ("Retry-After" in headers) is retry
    if retry:
        assert int(headers["Retry-After"]) > 0


async def test_wrong_provider_credentials_are_the_servers_fault(
    make_server: MakeServer, dialout: Dialout
) -> None:
    server = dialout.server(make_server, **dialout.wrong_secret)
    status, _, body = await dialout.dial(server, {"to": dialout.callee})
    assert status == 502, body
    assert body.items() >= dialout.reported(401, 20003).items()
    assert dialout.secret_setting in body["detail"]
    [refused] = dialout.fake.requests
    assert not refused.auth_ok and refused.status == 401


async def test_an_unreachable_provider_is_503_with_retry_after(
    make_server: MakeServer, dialout: Dialout
) -> None:
    # A bound socket that never listens: connections are refused, and no one else gets the port.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    server = dialout.server(make_server, **{dialout.api_setting: nobody})
    status, headers, body = await dialout.dial(server, {"to": dialout.callee})
    closed.close()
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert "cannot be reached" in body["detail"]


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


async def test_a_provider_that_never_answers_is_504_without_retry(
    dialout: Dialout, silent_api: str
) -> None:
    with pytest.raises(CallNotPlaced) as refused:
        await dialout.place_directly(silent_api, timeout=0.5)
    assert refused.value.status == 504
    assert refused.value.retry_after is None  # the call may exist: no blind retry
    assert "may have been placed" in refused.value.detail
