"""Nothing secret or private in any log line, at DEBUG: a full inbound call, a Twilio dial-out
and an Exotel dial-out, each spoken, with their status callbacks, and every line logged
(Pipecat's, uvicorn's access lines and the server's own) searched for every secret the server
holds or issues and every word of every transcript."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from dialout.placers import exotel_status_token
from ops.logs import configure_logging
from simulator import SimulatedCall, parse_twiml
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.conversation import QUIET, hear_goodbye, hear_greeting, hear_reply, speak
from tests.dialout_providers import (
    KEY,
    ExotelDialout,
    TwilioDialout,
    exotel_answers,
    exotel_settings,
    latest,
    twilio_settings,
)
from tests.fake_exotel import FakeExotel
from tests.fake_twilio import FakeTwilio
from tests.ops_helpers import eventually

OPENAI_KEY = "sk-test-openai-key-must-not-leak-0001"
STREAM_SECRET = "stream-secret-must-not-leak-0123456789"
# Words said on the calls, each unlike anything a log template says.
INBOUND = "The turquoise pelican juggles eleven mangoes."
OUTBOUND = "Hello? Wolfgang speaking from the lighthouse."
GREETING = "Greetings Bartholomew, your saxophone delivery awaits."
PIN = "4827"
CUSTOMER = "Ermengarde"
# Words of the log lines' own templates ("Call started … from …", "User started speaking",
# websockets' "! error while sending data" when a caller hangs up mid-send).
TEMPLATE_WORDS = frozenset({"from", "speaking", "will", "while"})


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every line the server logs at DEBUG, as its configured sink gets them."""
    lines: list[str] = []
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield lines
    logger.remove()
    logger.configure(extra={}, patcher=lambda record: None)
    logger.add(sys.stderr, level="INFO")  # as conftest.py has it
    # Left at DEBUG, the standard library would log every websocket frame of the tests
    # after this one: enough work to change the timing of their calls.
    root.handlers[:] = handlers
    root.setLevel(level)  # not `.level =`: setLevel clears every logger's cached verdicts
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(libraries.get(name, logging.NOTSET))


def words_of(turns: list[dict[str, Any]]) -> set[str]:
    return {word for turn in turns for word in re.findall(r"[a-z0-9]{4,}", turn["text"].lower())}


async def test_no_secret_and_no_transcript_word_is_logged(
    make_server: MakeServer, twilio: FakeTwilio, exotel: FakeExotel, logged: list[str]
) -> None:
    settings: dict[str, Any] = (
        twilio_settings(twilio.base_url)
        | exotel_settings(exotel)
        | {
            "openai_api_key": OPENAI_KEY,
            "stt": "whisper",
            "llm": "echo",
            "tts": "piper",
            "stream_secret": STREAM_SECRET,
            "outbound_greeting_wait_secs": 0.5,
            "log_level": "DEBUG",
        }
    )
    configure_logging(offline_settings(**settings), sink=logged.append)
    server = make_server(**settings)
    inbound_speech, outbound_speech = await speak(INBOUND), await speak(OUTBOUND)
    goodbye = await speak("Goodbye.")

    # Call data in the webhook's query string is private too (the access line shows the path).
    webhook = f"{server.url}/?customer={CUSTOMER}"
    async with SimulatedCall(webhook, auth_token=TEST_AUTH_TOKEN) as inbound:
        await inbound.dial()
        await hear_greeting(inbound, timeout=30)
        await hear_reply(inbound, inbound_speech, timeout=30)
        await inbound.press(PIN)
        await inbound.wait_for_bot_audio(after=time.monotonic(), timeout=30)
        await inbound.wait_for_bot_quiet(QUIET, timeout=30)
        await hear_goodbye(inbound, goodbye)
    tokens = [inbound.parameters["token"]]

    twilio_dialout = TwilioDialout(twilio)
    body = {"to": twilio_dialout.callee, "parameters": {"greeting": GREETING}}
    status, _, placed = await twilio_dialout.dial(server, body, {"Authorization": f"Bearer {KEY}"})
    assert status == 201, placed
    [sent] = twilio_dialout.placed()
    stream_url, parameters = parse_twiml(sent.value("Twiml") or "")
    tokens.append(parameters["token"])
    callee = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN, call_sid=placed["call_sid"])
    async with callee:
        await callee.connect_stream(stream_url, parameters)
        await hear_greeting(callee, timeout=30)
        await hear_reply(callee, outbound_speech, timeout=30)
    assert await twilio_dialout.report(server, sent, placed["call_sid"], "completed", 4) == 204

    exotel_dialout = ExotelDialout(exotel)
    body = {"to": exotel_dialout.callee, "parameters": {"greeting": GREETING}}
    status, _, exo_placed = await exotel_dialout.dial(server, body)
    assert status == 201, exo_placed
    [exo_sent] = exotel_dialout.placed()
    exo_callee = exotel_answers(exo_sent, server, exo_placed["call_sid"])
    async with exo_callee:
        await exo_callee.connect_stream(exo_sent.value("StreamUrl") or "", exo_callee.extra_params)
        await hear_greeting(exo_callee, timeout=30)
        await hear_reply(exo_callee, outbound_speech, timeout=30)
    call_sids = (inbound.call_sid, placed["call_sid"], exo_placed["call_sid"])
    assert await exotel_dialout.report(server, exo_sent, call_sids[2], "completed", 2) == 204

    async def all_ended() -> bool:
        return sum("Call ended" in line for line in logged) == 3

    await eventually(all_ended, "the three calls' ends are logged")
    transcript: set[str] = set()
    for call_sid in call_sids:
        record = await latest(server, call_sid)
        assert len(record["turns"]) >= 2, record
        transcript |= words_of(record["turns"])
    # The words said, and what the bot said back, all on record.
    assert {PIN, "bartholomew", "saxophone"} <= transcript
    assert transcript & {"turquoise", "pelican", "juggles", "mangoes"}  # as Whisper heard it
    assert transcript & {"wolfgang", "speaking", "lighthouse"}

    text = "".join(logged).lower()
    assert len(logged) > 500  # DEBUG: Pipecat's own lines too
    assert "/exotel/status/" in text and "get /calls/" in text  # uvicorn's access lines
    secrets = {
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "OPENAI_API_KEY": OPENAI_KEY,
        "DIALOUT_API_KEY": KEY,
        "STREAM_SECRET": STREAM_SECRET,
        "EXOTEL_WS_PASSWORD": str(settings["exotel_ws_password"]),
        "EXOTEL_API_TOKEN": exotel.api_token,
        "Exotel's status token": exotel_status_token(offline_settings(**settings)),
        **{f"stream token {i}": token for i, token in enumerate(tokens)},
        **{f"stream token MAC {i}": token.partition(".")[2] for i, token in enumerate(tokens)},
    }
    secrets["a call's data"] = CUSTOMER
    leaked = [name for name, secret in secrets.items() if secret.lower() in text]
    assert not leaked, f"in the log: {leaked}"
    said = sorted(word for word in transcript - TEMPLATE_WORDS if re.search(rf"\b{word}\b", text))
    assert not said, f"transcript words in the log: {said}"
