"""Graceful drain: `python server.py` as a real process, and a real SIGTERM mid-call.

Each test starts its own server process (so signals are real), with JSON logs
at DEBUG on a file, which the first test also reads to check the log lines.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.admission import RETRY_AFTER_SECS
from simulator import CallRejected, SimulatedCall
from tests.conftest import OWN_URL, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, Transcribe
from tests.conversation import hear_goodbye, hear_greeting, hear_reply, speak, words
from tests.fake_twilio import FakeTwilio
from tests.ops_helpers import eventually, readiness
from tests.server_process import ServerProcess

CALLER = "+15551234567"
DIALOUT_KEY = "dialout-test-key-must-not-leak-0004"
WS_NORMAL_CLOSURE = 1000
WS_SERVICE_RESTART = 1012
WS_TRY_AGAIN_LATER = 1013
# Secrets the server holds; none may show up in a log line.
SECRETS = {
    "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
    "OPENAI_API_KEY": "sk-test-openai-key-must-not-leak-0001",
    "DEEPGRAM_API_KEY": "dg-test-key-must-not-leak-0002",
    "CARTESIA_API_KEY": "sk_car_test-key-must-not-leak-0003",
}


# Each server logs JSON at DEBUG, holds cloud keys it must never log, and runs the offline services.
DRAIN_SERVER = {
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "DEBUG",
    "STT": "whisper",
    "LLM": "echo",
    "TTS": "piper",
    **SECRETS,
}
StartServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def server_process(tmp_path: Path) -> AsyncIterator[StartServer]:
    started: list[ServerProcess] = []

    async def start(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path, **(DRAIN_SERVER | env))
        started.append(server)
        return await asyncio.to_thread(server.start)

    yield start
    for server in started:
        server.kill()


def _log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """The JSON log lines; Pipecat's import banner comes before logging is set up."""
    lines = server.log().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return [json.loads(line) for line in lines[first:]]


async def _exit_code(server: ServerProcess) -> int:
    return await asyncio.to_thread(server.wait, 60)


async def _draining(url: str) -> bool:
    return (await readiness(url))[0] == 503


async def test_sigterm_lets_the_live_call_finish_then_exits_0(
    server_process: StartServer,
    transcribe: Transcribe,
    twilio: FakeTwilio,
) -> None:
    server = await server_process(
        DRAIN_TIMEOUT="300",
        TWILIO_ACCOUNT_SID=TEST_ACCOUNT_SID,
        TWILIO_API_BASE_URL=twilio.base_url,
        TWILIO_PHONE_NUMBER="+15550001111",
        DIALOUT_API_KEY=DIALOUT_KEY,
        PUBLIC_URL=OWN_URL,
    )
    question = await speak("What is the weather?")
    goodbye = await speak("Goodbye.")

    # Its webhook rings before the drain; its stream opens during it.
    late = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN)
    late_stream = await late.ring()
    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN, from_number=CALLER) as call:
        await call.dial()
        await hear_greeting(call, timeout=60)

        server.signal(signal.SIGTERM)
        await eventually(lambda: _draining(server.url), "/readyz turns 503")
        _, body = await readiness(server.url)
        assert body["draining"] is True
        assert body["reasons"] == {"admission": "draining"}
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/healthz")).status_code == 200

        with pytest.raises(CallRejected) as rejected:
            await SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN).dial()
        assert rejected.value.reason == "busy"
        async with late:
            await late.connect_stream(*late_stream)
            await late.wait_closed(timeout=10)
        assert (late.close_code, late.close_reason) == (WS_TRY_AGAIN_LATER, "busy: draining")
        async with httpx.AsyncClient() as client:
            dialout = await client.post(
                f"{server.url}/dialout",
                json={"to": "+15557654321"},
                headers={"Authorization": f"Bearer {DIALOUT_KEY}"},
            )
        assert dialout.status_code == 503
        assert dialout.headers["retry-after"] == str(RETRY_AFTER_SECS)
        assert twilio.calls_created() == []

        # The live call goes on: the bot still answers, until the caller says goodbye.
        assert "weather" in words(transcribe(await hear_reply(call, question, timeout=60)))
        await hear_goodbye(call, goodbye, timeout=60)

    assert call.closed_by == "server"
    assert call.close_code == WS_NORMAL_CLOSURE
    assert await _exit_code(server) == 0

    lines = _log_lines(server)
    messages = [line["message"] for line in lines]
    assert any(m.startswith("Draining") for m in messages)
    assert any(m.startswith("Drained") for m in messages)
    _assert_call_lines_carry_the_sid(lines, call.call_sid)
    text = server.log()
    for name, secret in (SECRETS | {"DIALOUT_API_KEY": DIALOUT_KEY}).items():
        assert secret not in text, f"{name} is in the log"
    assert CALLER not in text
    assert CALLER.removeprefix("+") not in text
    assert "***4567" in text


def _assert_call_lines_carry_the_sid(lines: list[dict[str, Any]], call_sid: str) -> None:
    started = next(i for i, line in enumerate(lines) if line["message"].startswith("Call started"))
    ended = next(i for i, line in enumerate(lines) if line["message"].startswith("Call ended"))
    assert lines[started]["call_sid"] == lines[ended]["call_sid"] == call_sid
    pipecat = [line for line in lines[started:ended] if line["logger"].startswith("pipecat")]
    assert len(pipecat) > 10  # Pipecat's own lines, at DEBUG
    strays = [line for line in pipecat if line["call_sid"] != call_sid]
    assert not strays, f"Pipecat lines of the call without its SID: {strays[:3]}"


async def test_calls_still_up_at_drain_timeout_hear_goodbye_and_end(
    server_process: StartServer, transcribe: Transcribe
) -> None:
    server = await server_process(DRAIN_TIMEOUT="1")

    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
        await call.dial()
        await hear_greeting(call, timeout=60)
        before = len(call.heard)
        server.signal(signal.SIGTERM)
        await call.wait_closed(timeout=60)

    assert call.closed_by == "server"
    assert call.close_code == WS_NORMAL_CLOSURE
    goodbye = transcribe(call.heard[before:])
    # Whisper tiny may mishear a word ("the services were starting"); most must be there.
    assert len({"sorry", "restarting", "please", "call", "again"} & words(goodbye)) >= 3, goodbye
    assert await _exit_code(server) == 0
    assert any(line["message"] == "Call ended: drained" for line in _log_lines(server))


async def test_a_second_signal_stops_at_once(
    server_process: StartServer,
) -> None:
    server = await server_process(DRAIN_TIMEOUT="300")

    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=60)
        server.signal(signal.SIGTERM)
        await eventually(lambda: _draining(server.url), "/readyz turns 503")
        server.signal(signal.SIGINT)
        # Far sooner than the 300 s the drain would have waited.
        assert await _exit_code(server) == 128 + signal.SIGINT
        await call.wait_closed(timeout=10)

    assert call.closed_by == "server"
    assert call.close_code == WS_SERVICE_RESTART  # uvicorn's own shutdown, as asked
