"""Dial-out through Twilio, end to end: the call's TwiML, the caller id it needs, the placed
call answered by a simulated callee who talks to the bot, and the simulator's --dialout."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assistants.persona import system_prompt
from simulator import SimulatedCall, cli, parse_twiml, read_wav
from tests.conftest import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    MakeServer,
    Transcribe,
    offline_settings,
)
from tests.conversation import hear_greeting, hear_reply, speak, words
from tests.dialout_providers import (
    CALLEE,
    KEY,
    OUR_NUMBER,
    TwilioDialout,
    callback_url,
    latest,
    twilio_settings,
)
from tests.fake_twilio import FakeTwilio
from tests.server_process import ROOT, clean_environment
from tests.server_thread import ServerThread, free_port


@pytest.fixture
def dialout(twilio: FakeTwilio) -> TwilioDialout:
    """Dial-out through the fake Twilio."""
    return TwilioDialout(twilio)


# -- Placing the call ------------------------------------------------------------------


async def test_dialout_places_a_call_whose_twiml_streams_to_the_bot(
    make_server: MakeServer, dialout: TwilioDialout
) -> None:
    server = dialout.server(make_server)
    tricky = 'Ann <ann@example.com> & "Bob" \'s'
    placed = await dialout.dial(
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
    sent = dialout.check_placed(placed)
    assert sent.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json"
    assert (sent.value("To"), sent.value("From")) == (CALLEE, OUR_NUMBER)
    assert re.fullmatch(rf"{server.url}/status\?attempt=attempt-[0-9a-f]{{32}}", callback_url(sent))
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
    # The stream token signs the others and the attempt (tests/test_stream_tokens.py).
    assert re.fullmatch(r"attempt-[0-9a-f]{32}", parameters.pop("attempt") or "")
    assert re.fullmatch(r"[0-9]+\.[\w-]{43}", parameters.pop("token") or "")
    assert parameters == {
        "customer_id": "42",
        "contact": tricky,
        "direction": "outbound",
        "from_number": OUR_NUMBER,
        "to_number": CALLEE,
    }


async def test_public_url_names_the_stream_and_the_status_callback(
    make_server: MakeServer, dialout: TwilioDialout
) -> None:
    server = dialout.server(make_server, public_url="https://bot.example.com")
    status, _, body = await dialout.dial(server, {"to": CALLEE, "from": "+15550009999"})
    assert status == 201, body
    [sent] = dialout.placed()
    assert sent.value("From") == "+15550009999"
    assert callback_url(sent).startswith("https://bot.example.com/status?attempt=attempt-")
    stream_url, _ = parse_twiml(sent.value("Twiml") or "")
    assert stream_url == "wss://bot.example.com/ws"


def test_an_unsafe_dialout_configuration_does_not_start() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        offline_settings(
            dialout_api_key="short",
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=TEST_AUTH_TOKEN,
        )
    # The key alone opens the records API and the console of an offline server.
    assert not offline_settings(dialout_api_key=KEY).dials_out
    with pytest.raises(ValueError, match="number prefix"):
        offline_settings(dialout_allowed_prefixes="+1,44")
    with pytest.raises(ValueError, match="dial-out also needs PUBLIC_URL"):
        offline_settings(**twilio_settings("https://api.twilio.com", public_url=None))


def test_dialout_without_public_url_stops_the_server_at_start_up(tmp_path: Path) -> None:
    settings = twilio_settings("https://api.twilio.com", public_url=None)
    env = clean_environment() | {name.upper(): str(value) for name, value in settings.items()}
    env = {name: value for name, value in env.items() if name != "PUBLIC_URL"}
    started = subprocess.run(
        [sys.executable, str(ROOT / "server.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    assert "Invalid configuration" in started.stderr
    assert "dial-out also needs PUBLIC_URL" in started.stderr


async def test_no_caller_id_anywhere_is_a_clear_422(
    make_server: MakeServer, dialout: TwilioDialout
) -> None:
    server = dialout.server(make_server, twilio_phone_number=None)
    status, _, body = await dialout.dial(server, {"to": CALLEE})
    assert status == 422
    assert "TWILIO_PHONE_NUMBER" in body["detail"]
    assert dialout.fake.requests == []


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
    make_server: MakeServer, dialout: TwilioDialout, transcribe: Transcribe
) -> None:
    # The silence wait is the longest allowed: a greeting heard sooner answers the hello.
    server = dialout.server(make_server, outbound_greeting_wait_secs=30)
    greeting = "Hello, this is the dental office calling about your appointment."
    status, _, placed = await dialout.dial(
        server,
        {"to": CALLEE, "parameters": {"greeting": greeting, "customer_id": "4242"}},
    )
    assert status == 201, placed
    hello = await speak("Hello? Who is this?")
    call = await answer(server, dialout.fake, placed["call_sid"])
    async with call:
        await hear_reply(call, hello, timeout=25)
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
    make_server: MakeServer, dialout: TwilioDialout, transcribe: Transcribe
) -> None:
    server = dialout.server(make_server, outbound_greeting_wait_secs=0.5)
    status, _, placed = await dialout.dial(server, {"to": CALLEE})
    assert status == 201, placed
    call = await answer(server, dialout.fake, placed["call_sid"])
    async with call:
        greeting = transcribe(await hear_greeting(call, timeout=25))
        assert {"repeat", "goodbye"} <= words(greeting), greeting

        pepper = await speak("My cat is called Pepper.")
        reply = transcribe(await hear_reply(call, pepper, timeout=25))
    assert "heard" in words(reply), reply  # after the greeting, the agent answers as usual


# -- The simulator's --dialout ------------------------------------------------------------


def test_the_simulator_places_a_dialout_and_plays_the_callee(
    make_server: MakeServer,
    transcribe: Transcribe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls_api = f"http://127.0.0.1:{free_port()}"  # the simulator serves Twilio's Calls API
    server = make_server(**twilio_settings(calls_api, outbound_greeting_wait_secs=30))
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
    record = asyncio.run(latest(server, call_sid))
    expected: dict[str, Any] = {
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
    server = make_server(**twilio_settings(calls_api, twilio_phone_number=None))
    argv = ["--url", server.url, "--dialout", "--twilio-api", calls_api, "--api-key", "wrong"]
    assert cli.main([*argv, "--to", CALLEE]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert cli.main([*argv, "--to", CALLEE, "--twilio-api", "https://api.twilio.com"]) == 1
    assert "127.0.0.1" in capsys.readouterr().err


async def test_a_caller_id_twilio_refuses_is_the_requests_fault_when_the_request_chose_it(
    make_server: MakeServer, dialout: TwilioDialout
) -> None:
    server = dialout.server(make_server)
    status, _, body = await dialout.dial(server, {"to": CALLEE, "from": "+7680"})
    assert status == 422, body  # the fake, like Twilio, refuses it with 21212
    assert body["twilio_code"] == 21212 and "+7680" in body["detail"]
    # The server's own default caller id refused is still the server's fault.
    dialout.fail_next(400, 21210, "'From' phone number not verified")
    status, _, body = await dialout.dial(server, {"to": CALLEE})
    assert status == 502, body
