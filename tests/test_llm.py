"""The LLM path: an OpenAI-compatible server (here a fake of one) drives the conversation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from simulator import SimulatedCall, synthesize
from tests.conftest import MakeServer
from tests.fake_openai import FakeOpenAI

QUIET = 2.0


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def test_an_openai_compatible_llm_answers_and_ends_the_call_with_its_tool(
    make_server: MakeServer, transcribe: Callable[[bytes], str]
) -> None:
    question = await asyncio.to_thread(synthesize, "What is the weather like today?")
    goodbye = await asyncio.to_thread(synthesize, "Goodbye.")
    with FakeOpenAI() as openai:
        server = make_server(
            llm="openai", openai_api_key=openai.api_key, openai_base_url=f"{openai.base_url}/v1"
        )
        async with SimulatedCall(server.url, params={}) as call:
            await call.dial()
            await call.wait_for_bot_audio(timeout=20)
            await call.wait_for_bot_quiet(quiet=QUIET)
            greeting = transcribe(call.heard)
            assert {"help", "today"} <= words(greeting), greeting

            heard = len(call.heard)
            said_at = await call.say(question)
            await call.wait_for_bot_audio(after=said_at, timeout=20)
            await call.wait_for_bot_quiet(quiet=QUIET)
            answer = words(transcribe(call.heard[heard:]))
            assert "said" in answer and answer & {"weather", "like", "today"}, answer

            heard = len(call.heard)
            await call.say(goodbye)
            await call.wait_closed(timeout=30)
            assert {"goodbye", "calling"} <= words(transcribe(call.heard[heard:]))
        assert call.closed_by == "server"

    first = openai.requests[0]
    system = first["messages"][0]
    assert system["role"] == "system" and "+15550001111" in system["content"]
    assert [t["function"]["name"] for t in first["tools"]] == ["end_call"]
