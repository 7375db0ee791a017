"""The LLM path: an OpenAI-compatible server (here a fake of one) drives the conversation."""

from __future__ import annotations

from simulator import SimulatedCall
from tests.conftest import MakeServer, Transcribe
from tests.conversation import hear_goodbye, hear_greeting, hear_reply, speak, words
from tests.fake_openai import FakeOpenAI


async def test_an_openai_compatible_llm_answers_and_ends_the_call_with_its_tool(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    question = await speak("What is the weather like today?")
    goodbye = await speak("Goodbye.")
    with FakeOpenAI() as openai:
        server = make_server(
            llm="openai", openai_api_key=openai.api_key, openai_base_url=f"{openai.base_url}/v1"
        )
        async with SimulatedCall(server.url, params={}) as call:
            await call.dial()
            greeting = transcribe(await hear_greeting(call))
            assert {"help", "today"} <= words(greeting), greeting

            answer = words(transcribe(await hear_reply(call, question)))
            assert "said" in answer and answer & {"weather", "like", "today"}, answer

            farewell = transcribe(await hear_goodbye(call, goodbye))
            assert {"goodbye", "calling"} <= words(farewell), farewell
        assert call.closed_by == "server"

    first = openai.requests[0]
    system = first["messages"][0]
    assert system["role"] == "system" and "+15550001111" in system["content"]
    assert [t["function"]["name"] for t in first["tools"]] == ["end_call"]
