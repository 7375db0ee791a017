"""Keys, both ways: the LLM presses keys (DTMF tones the other side hears, decoded here with
a Goertzel detector), and the keys a caller presses reach the LLM's context.

The LLM is the scripted fake OpenAI, which checks its requests as OpenAI does.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from config.control import PressKeys
from simulator import ExotelCall, SimulatedCall, parse_twiml
from telephony.call_info import CallInfo
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, Transcribe
from tests.conversation import QUIET, hear_greeting, speak, words
from tests.dialout_providers import CALLEE, TwilioDialout
from tests.dtmf import detect_keys
from tests.fake_openai import FakeOpenAI
from tests.fake_twilio import FakeTwilio
from voice.keys import keys_audio, offers_keys

MENU = "Welcome to the main menu."
WRONG = "Please hold for an operator."


def scripted_llm() -> FakeOpenAI:
    """An LLM that presses 12# when it hears the menu, and a bad key at the operator."""
    return FakeOpenAI(
        tool_calls={
            "menu": ("press_keys", {"keys": "12#"}),
            "operator": ("press_keys", {"keys": "12x"}),
        },
        reply_to_tool=lambda result: "Sorry, I could not press that.",
    )


def llm_settings(llm: FakeOpenAI) -> dict[str, Any]:
    return {
        "llm": "openai",
        "openai_api_key": llm.api_key,
        "openai_base_url": f"{llm.base_url}/v1",
        "outbound_greeting_wait_secs": 0.5,
    }


def tool_results(llm: FakeOpenAI) -> list[Any]:
    """What the tools answered, as the LLM was last told (after a key press, the menu speaks
    next: its result reaches the LLM with the next turn)."""
    messages = llm.requests[-1]["messages"]
    return [json.loads(m["content"]) for m in messages if m["role"] == "tool"]


async def hear_after(call: SimulatedCall | ExotelCall, speech: bytes) -> bytes:
    """Say `speech`, then what the caller heard from then until the bot was quiet again."""
    before = len(call.heard)
    said = await call.say(speech)
    await call.wait_for_bot_audio(after=said, timeout=30)
    await call.wait_for_bot_quiet(QUIET, timeout=30)
    return call.heard[before:]


async def test_the_llm_presses_keys_in_a_call_it_placed_and_the_callee_hears_them(
    make_server: MakeServer, twilio: FakeTwilio, transcribe: Transcribe
) -> None:
    menu, wrong = await speak(MENU), await speak(WRONG)
    dialout = TwilioDialout(twilio)
    with scripted_llm() as llm:
        server = dialout.server(make_server, **llm_settings(llm))
        status, _, placed = await dialout.dial(server, {"to": CALLEE})
        assert status == 201, placed
        [sent] = dialout.placed()
        stream_url, parameters = parse_twiml(sent.value("Twiml") or "")
        callee = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN, call_sid=placed["call_sid"])
        async with callee:
            await callee.connect_stream(stream_url, parameters)
            greeting = await hear_greeting(callee, timeout=30)
            assert detect_keys(greeting, 8000) == ""

            # The tones, decoded from the μ-law the callee received, in order.
            pressed = await hear_after(callee, menu)
            assert detect_keys(pressed, 8000) == "12#"

            # A key that is not one: the LLM is told why, nothing is sent, the call goes on.
            answer = await hear_after(callee, wrong)
            assert detect_keys(answer, 8000) == ""
            assert {"sorry", "press"} <= words(transcribe(answer))
            done, refused = tool_results(llm)
            assert done == {"pressed": "12#"}
            assert "'12x'" in refused["error"] and "0-9, * and #" in refused["error"], refused
            assert callee.close_code is None
        assert callee.closed_by == "caller"

    offered = [t["function"]["name"] for t in llm.requests[0]["tools"]]
    assert offered == ["end_call", "press_keys"]


async def test_an_operator_enables_keys_on_an_exotel_call_at_its_rate(
    make_server: MakeServer,
) -> None:
    menu = await speak(MENU)
    with scripted_llm() as llm:
        server = make_server(**llm_settings(llm))
        params = {"press_keys": "true"}
        async with ExotelCall(server.url, sample_rate=16000, params=params) as call:
            await call.dial()
            await hear_greeting(call, timeout=30)
            # The simulated caller hears the 16 kHz stream at 8 kHz: the tones survive both.
            assert detect_keys(await hear_after(call, menu), 8000) == "12#"
        assert not call.protocol_errors, call.protocol_errors


async def test_the_keys_a_caller_presses_reach_the_llm(make_server: MakeServer) -> None:
    with scripted_llm() as llm:
        server = make_server(**llm_settings(llm))
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await hear_greeting(call, timeout=30)
            await call.press("42#")
            await call.wait_for_bot_audio(after=time.monotonic(), timeout=30)
            await call.wait_for_bot_quiet(QUIET, timeout=30)
    said = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert said[-1] == "DTMF: 42#", said
    # Not a call it placed: the LLM may not press keys.
    assert [t["function"]["name"] for t in llm.requests[-1]["tools"]] == ["end_call"]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_tones_decode_to_their_keys_at_each_wire_rate(rate: int) -> None:
    assert detect_keys(keys_audio("1234567890*#w55", rate), rate) == "1234567890*#55"


@pytest.mark.parametrize("keys", ["", "12a", "1 2", "1" * 33, "١٢"])
def test_what_is_not_keys_is_refused_plainly(keys: str) -> None:
    with pytest.raises(ValueError, match="keys are 0-9, \\* and #"):
        keys_audio(keys, 8000)


@pytest.mark.parametrize(
    ("direction", "parameter", "setting", "listed", "offered"),
    [
        ("outbound", None, PressKeys.OUTBOUND, False, True),
        ("inbound", None, PressKeys.OUTBOUND, False, False),
        ("inbound", None, PressKeys.OUTBOUND, True, True),
        ("inbound", None, PressKeys.ALL, False, True),
        ("outbound", None, PressKeys.OFF, False, False),
        ("inbound", "true", PressKeys.OFF, False, True),
        ("outbound", "false", PressKeys.ALL, True, False),
    ],
)
def test_who_gets_the_tool(
    direction: str, parameter: str | None, setting: PressKeys, listed: bool, offered: bool
) -> None:
    parameters = {"press_keys": parameter} if parameter else {}
    call = CallInfo("twilio", "CA1", "MZ1", direction=direction, parameters=parameters)
    assert offers_keys(call, setting, listed=listed) is offered
