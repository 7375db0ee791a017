"""`CallTools`: one call's HTTP tools, given to its LLM, with a filler for slow answers.

    tools = CallTools(choice.tools, client, caller, filler="One moment.", on_called=...)
    context.set_tools(ToolsSchema(standard_tools=[END_CALL_TOOL, *tools.schemas()]))
    tools.register(llm)

While a tool has not answered within `FILLER_AFTER_SECS`, the bot says the
filler, so the caller does not hear dead air. Each finished call is counted
(`switchboard_tool_calls_total`, the latency histogram) and handed to
`on_called`, which writes it into the transcript and the `tool.called` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.services.llm_service import FunctionCallParams, LLMService

from assistants.model import Tool
from telephony.call_info import CallInfo
from tools.http import ToolClient, ToolOutcome
from tools.metrics import ToolMetrics

FILLER_AFTER_SECS = 1.0

ToolCalled = Callable[[str, Mapping[str, Any], ToolOutcome], None]


def caller_identity(call: CallInfo, assistant: str) -> dict[str, Any]:
    """The call, as every tool request describes it."""
    return {
        "call_sid": call.call_sid,
        "provider": call.provider,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "assistant": assistant,
        "parameters": dict(call.parameters),
    }


class CallTools:
    """The HTTP tools of one call's assistant, bound to the call."""

    def __init__(
        self,
        tools: Sequence[Tool],
        client: ToolClient,
        caller: Mapping[str, Any],
        *,
        filler: str,
        metrics: ToolMetrics | None = None,
        on_called: ToolCalled | None = None,
    ) -> None:
        """Bind `tools` to the call `caller` describes.

        Args:
            tools: The assistant's HTTP tools.
            client: The server's tool client.
            caller: The call's identity, sent with every request.
            filler: Said when a tool has not answered within a second ("" for nothing).
            metrics: Where tool calls are counted.
            on_called: Told of each finished call: tool name, arguments, outcome.
        """
        self._tools = {tool.name: tool for tool in tools}
        self._client = client
        self._caller = dict(caller)
        self._filler = filler
        self._metrics = metrics
        self._on_called = on_called

    def schemas(self) -> list[FunctionSchema]:
        """The tools as the LLM is told of them."""
        return [
            FunctionSchema(
                name=tool.name,
                description=tool.description,
                properties=tool.parameters.get("properties", {}),
                required=tool.parameters.get("required", []),
            )
            for tool in self._tools.values()
        ]

    def register(self, llm: LLMService) -> None:
        """Let `llm` call each tool."""
        for name in self._tools:
            llm.register_function(name, self._handle)

    async def _handle(self, params: FunctionCallParams) -> None:
        tool = self._tools[params.function_name]
        arguments = dict(params.arguments)
        request = asyncio.ensure_future(self._client.call(tool, arguments, self._caller))
        try:
            done, _ = await asyncio.wait({request}, timeout=FILLER_AFTER_SECS)
            if not done and self._filler:
                await params.llm.push_frame(TTSSpeakFrame(self._filler))
            outcome = await request
        finally:
            request.cancel()  # the caller interrupted, or the call ended: stop waiting
        if not outcome.ok:
            logger.warning(f"Tool {tool.name}: {outcome.kind} ({outcome.result.get('error')})")
        if self._metrics is not None:
            self._metrics.observe(tool.name, outcome.kind, outcome.seconds)
        if self._on_called is not None:
            self._on_called(tool.name, arguments, outcome)
        await params.result_callback(outcome.result)
