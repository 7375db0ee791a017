"""Logs: a call's lines, Pipecat's own included, carry its SID; numbers masked; no secrets."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from ops.logs import configure_logging, mask_phone_numbers
from simulator import SimulatedCall
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.conversation import hear_greeting, hear_reply, speak
from tests.ops_helpers import eventually

CALLER = "+15557654321"
OPENAI_KEY = "sk-test-openai-key-must-not-leak-0001"


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every formatted line, as the configured sink receives it; logging reset afterwards."""
    lines: list[str] = []
    handlers, level = list(logging.root.handlers), logging.root.level
    yield lines
    logger.remove()
    logger.configure(extra={}, patcher=lambda record: None)
    logger.add(sys.stderr, level="INFO")  # as conftest.py has it
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


def _json(lines: list[str]) -> list[dict[str, Any]]:
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    return [json.loads(line) for line in lines]


def test_json_lines_mask_numbers_and_blot_out_secrets(log_lines: list[str]) -> None:
    settings = offline_settings(
        log_format="json", twilio_auth_token=TEST_AUTH_TOKEN, openai_api_key=OPENAI_KEY, llm="echo"
    )
    configure_logging(settings, sink=log_lines.append)

    with logger.contextualize(call_sid="CA" + "a" * 32):
        logger.info(f"Dialling {CALLER} (Exotel form 09876543210) with key {OPENAI_KEY}")
        logger.bind(to_number=CALLER).warning("bound values are masked too")
        try:
            raise ValueError(f"cannot reach {CALLER} with token {TEST_AUTH_TOKEN}")
        except ValueError:
            logger.exception("Dial failed")
    logger.info("postgresql://switchboard:hunter2secret@db:5432/calls")
    logging.getLogger("uvicorn.error").warning("from the standard library: %s", "%2B15557654321")

    lines = _json(log_lines)
    text = "".join(log_lines)
    assert CALLER not in text and "5557654321" not in text and "9876543210" not in text
    assert OPENAI_KEY not in text and TEST_AUTH_TOKEN not in text and "hunter2secret" not in text

    dialling, bound, failed, url, stdlib = lines
    assert dialling["call_sid"] == "CA" + "a" * 32
    assert dialling["message"] == "Dialling ***4321 (Exotel form ***3210) with key [secret]"
    assert dialling["level"] == "INFO" and dialling["logger"] == __name__
    assert bound["to_number"] == "***4321"
    assert failed["exception"].endswith("ValueError: cannot reach ***4321 with token [secret]")
    assert url["call_sid"] == "-"
    assert url["message"] == "postgresql://switchboard:[secret]@db:5432/calls"
    assert (stdlib["logger"], stdlib["level"]) == (__name__, "WARNING")  # who logged it
    assert stdlib["message"] == "from the standard library: ***4321"


def test_text_lines_carry_the_call_sid(log_lines: list[str]) -> None:
    configure_logging(offline_settings(log_level="debug"), sink=log_lines.append)
    with logger.contextualize(call_sid="CA" + "b" * 32):
        logger.debug(f"Call from {CALLER}")
    logger.debug("Not in a call")
    in_call, outside = log_lines
    assert in_call.endswith(f" DEBUG   CA{'b' * 32} Call from ***4321\n")
    assert outside.endswith(" DEBUG   - Not in a call\n")


def test_masking_leaves_sids_times_and_addresses_alone() -> None:
    untouched = (
        "CA0123456789abcdef0123456789abcdef MZ12345678901234567890 "
        "2026-11-21T07:16:35.155 127.0.0.1:47788 took 1234567 us"
    )
    assert mask_phone_numbers(untouched) == untouched
    assert mask_phone_numbers("sip:+15557654321@trunk") == "sip:***4321@trunk"


async def test_every_line_of_a_call_carries_its_sid(
    make_server: MakeServer, log_lines: list[str]
) -> None:
    secrets = {"twilio_auth_token": TEST_AUTH_TOKEN, "openai_api_key": OPENAI_KEY, "llm": "echo"}
    configure_logging(
        offline_settings(log_format="json", log_level="DEBUG", **secrets), sink=log_lines.append
    )
    server = make_server(**secrets)
    speech = await speak("Please tell me my balance.")

    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN, from_number=CALLER) as call:
        await call.dial()
        await hear_greeting(call, timeout=30)
        await hear_reply(call, speech, timeout=30)

    async def ended() -> bool:
        return any('"Call ended' in line for line in log_lines)

    await eventually(ended, "the call's end is logged")
    lines = _json(list(log_lines))
    started = next(i for i, line in enumerate(lines) if line["message"].startswith("Call started"))
    end = next(i for i, line in enumerate(lines) if line["message"].startswith("Call ended"))
    of_the_call = lines[started : end + 1]
    pipecat = [line for line in of_the_call if line["logger"].startswith("pipecat")]
    assert len(pipecat) > 10
    assert {line["call_sid"] for line in pipecat} == {call.call_sid}
    # The module that runs the call (`server` before the layout gave calls a folder).
    ours = [line for line in of_the_call if line["logger"].startswith("calls.")]
    assert ours and {line["call_sid"] for line in ours} == {call.call_sid}
    assert lines[started]["message"] == "Call started (twilio, inbound, from ***4321 to ***2222)"
    text = "".join(log_lines)
    assert CALLER not in text and TEST_AUTH_TOKEN not in text and OPENAI_KEY not in text
