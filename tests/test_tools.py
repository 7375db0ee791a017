"""HTTP tools: the LLM calls the business's own system during a call, signed, checked, bounded.

The tool server verifies each request with the `standardwebhooks` library; the
LLM is the scripted fake OpenAI, which checks its requests as OpenAI does.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistants.model import Tool
from simulator import SimulatedCall, synthesize
from tests.conftest import MakeServer, offline_settings
from tests.fake_openai import FakeOpenAI
from tests.ops_helpers import scrape, value
from tests.records_helpers import reading, record_when
from tests.webhook_servers import SECRET, ToolServer
from tools.guard import is_public_address
from tools.http import ToolClient, ToolOutcomeKind

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^A[0-9]+$"}},
    "required": ["order_id"],
}
CALLER = {"call_sid": "CA123", "from": "+15550001111", "to": "+15550002222"}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def assistants_file(tmp_path: Path, tool_url: str) -> Path:
    path = tmp_path / "assistants.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        tools:
          order_status:
            description: Look up where an order is.
            parameters: {json.dumps(ORDER_SCHEMA)}
            url: {tool_url}
        assistants:
          shop:
            greeting: Hello, this is the shop.
            tools: [order_status]
        """)
    )
    return path


async def test_a_slow_tool_gets_a_filler_then_its_answer_is_spoken(
    make_server: MakeServer, tmp_path: Path, transcribe: Callable[[bytes], str]
) -> None:
    question = await asyncio.to_thread(synthesize, "Where is my order?")
    llm = FakeOpenAI(
        tool_calls={"order": ("order_status", {"order_id": "A42"})},
        reply_to_tool=lambda result: (
            f"Your order has {result['status']} and arrives on {result['eta']}."
        ),
    )
    with llm, ToolServer({"status": "shipped", "eta": "Tuesday"}, delay=1.5) as tool:
        server = make_server(
            llm="openai",
            openai_api_key=llm.api_key,
            openai_base_url=f"{llm.base_url}/v1",
            assistants_file=assistants_file(tmp_path, f"{tool.base_url}/orders"),
            webhook_secret=SECRET,
            tools_allow_private=True,
        )
        async with SimulatedCall(server.url) as call:
            await call.dial()
            await call.wait_for_bot_audio(timeout=30)
            await call.wait_for_bot_quiet(quiet=1.5, timeout=30)
            heard = len(call.heard)
            said = await call.say(question)
            await call.wait_for_bot_audio(after=said, timeout=30)
            await call.wait_for_bot_quiet(quiet=2.5, timeout=30)
            reply = words(transcribe(call.heard[heard:]))
        received = tool.received

    # The filler, then the answer built from the tool's result.
    assert "moment" in reply and "shipped" in reply and "tuesday" in reply, reply
    assert reply.index("moment") < reply.index("shipped"), reply

    (request,) = received
    assert tool.unverified == 0 and request.status == 200
    assert request.body["tool"] == "order_status"
    assert request.body["arguments"] == {"order_id": "A42"}
    identity = request.body["call"]
    assert (identity["call_sid"], identity["assistant"]) == (call.call_sid, "shop")
    assert (identity["from"], identity["to"]) == (call.from_number, call.to_number)

    offered = llm.requests[1]["tools"]
    assert [t["function"]["name"] for t in offered] == ["end_call", "order_status"]
    assert offered[1]["function"]["parameters"]["required"] == ["order_id"]
    answered = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert json.loads(answered[-1]["content"]) == {"status": "shipped", "eta": "Tuesday"}

    async with reading(server.app.state.settings.database_url.get_secret_value()) as store:
        record = await record_when(store, call.call_sid)
    tool_turns = [turn.text for turn in record.turns if turn.role == "tool"]
    assert tool_turns == [
        'order_status({"order_id": "A42"}) → {"status": "shipped", "eta": "Tuesday"}'
    ]

    samples = await scrape(server.url)
    assert value(samples, "switchboard_tool_calls_total", tool="order_status", outcome="ok") == 1
    latency = value(samples, "switchboard_tool_latency_seconds_sum", tool="order_status")
    assert latency is not None and latency >= 1.5


@pytest.fixture
async def client() -> Any:
    client = ToolClient(offline_settings(webhook_secret=SECRET, tools_allow_private=True))
    yield client
    await client.aclose()


def tool(url: str, timeout: float = 5.0) -> Tool:
    return Tool(
        name="order_status",
        description="Look up an order.",
        parameters=ORDER_SCHEMA,
        url=url,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("server", "kind", "error"),
    [
        (ToolServer(status=500, raw="oops"), ToolOutcomeKind.HTTP_ERROR, "HTTP 500"),
        (ToolServer(status=404, raw="{}"), ToolOutcomeKind.HTTP_ERROR, "HTTP 404"),
        (ToolServer(raw="<html>not json"), ToolOutcomeKind.INVALID_ANSWER, "not JSON"),
        (ToolServer({"late": True}, delay=1.0), ToolOutcomeKind.TIMEOUT, "within 0.3 seconds"),
    ],
    ids=["500", "404", "not-json", "timeout"],
)
async def test_a_failing_tool_becomes_an_error_the_llm_can_talk_about(
    client: ToolClient, server: ToolServer, kind: ToolOutcomeKind, error: str
) -> None:
    with server:
        outcome = await client.call(tool(f"{server.base_url}/t", 0.3), {"order_id": "A1"}, CALLER)
    assert outcome.kind is kind
    assert error in outcome.result["error"]
    if kind is not ToolOutcomeKind.TIMEOUT:
        assert len(server.received) == 1


async def test_arguments_are_checked_before_anything_is_sent(client: ToolClient) -> None:
    with ToolServer({"ok": True}) as server:
        wrong = await client.call(tool(f"{server.base_url}/t"), {"order_id": 42}, CALLER)
        missing = await client.call(tool(f"{server.base_url}/t"), {}, CALLER)
        right = await client.call(tool(f"{server.base_url}/t"), {"order_id": "A7"}, CALLER)
    assert wrong.kind is ToolOutcomeKind.INVALID_ARGUMENTS
    assert "order_id: 42 is not of type 'string'" in wrong.result["error"]
    assert "'order_id' is a required property" in missing.result["error"]
    assert right.ok and right.result == {"ok": True}
    assert [r.body["arguments"] for r in server.received] == [{"order_id": "A7"}]


async def test_private_addresses_are_refused_unless_allowed() -> None:
    guarded = ToolClient(offline_settings(webhook_secret=SECRET))
    # The machine's own name resolves to a loopback or private address: the
    # guard refuses it at connection time, whatever the URL says.
    own_name = socket.gethostname()
    addresses = {str(info[4][0]) for info in socket.getaddrinfo(own_name, None)}
    try:
        with ToolServer({"ok": True}) as server:
            port = server.base_url.rsplit(":", 1)[1]
            literal = await guarded.call(tool(f"{server.base_url}/t"), {"order_id": "A1"}, CALLER)
            named = await guarded.call(
                tool(f"http://{own_name}:{port}/t"), {"order_id": "A1"}, CALLER
            )
        assert literal.kind is ToolOutcomeKind.REFUSED
        assert "127.0.0.1 is not a public address" in literal.result["error"]
        if not any(is_public_address(a) for a in addresses):
            assert named.kind is ToolOutcomeKind.REFUSED, named
        assert server.received == []
    finally:
        await guarded.aclose()


def test_public_addresses_are_told_apart_from_private_ones() -> None:
    for address in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                     "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                     "224.0.0.1"):  # fmt: skip
        assert not is_public_address(address), address
    for address in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert is_public_address(address), address
