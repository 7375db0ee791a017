"""A fake OpenAI-compatible chat completions API on 127.0.0.1, for tests.

OpenAI is a paid outside service; this fake checks what it checks (a Bearer key,
a model, messages whose roles and tool calls fit together, tools in the function
shape) and answers 400 as OpenAI would when they do not. It streams answers in
OpenAI's server-sent-event format, and is scripted:

- the caller says goodbye and `end_call` is offered: it calls `end_call`;
- the caller says a word of `tool_calls` and that tool is offered: it calls the
  tool, its arguments streamed in pieces, as OpenAI does;
- a tool's result has come back since the caller last spoke: it answers with
  `reply_to_tool(result)`;
- otherwise it answers "You said: <their words>".

A request that does not ask to stream (`"stream": false`, as a one-off summary
does) gets one `chat.completion` whose content is `complete(messages)`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _completion(model: str, text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _error(status: int, message: str, kind: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


def request_problem(body: Mapping[str, Any]) -> str | None:
    """What OpenAI would refuse in a chat completions request body, or None."""
    messages = body.get("messages")
    if not body.get("model") or not isinstance(messages, list) or not messages:
        return "'model' and a non-empty 'messages' are required."
    for index, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            return f"tools[{index}]: must be {{'type': 'function', 'function': {{…}}}}"
        if not FUNCTION_NAME.fullmatch(str(function.get("name", ""))):
            return f"tools[{index}].function.name: must match ^[a-zA-Z0-9_-]{{1,64}}$"
        parameters = function.get("parameters", {"type": "object"})
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            return f"tools[{index}].function.parameters: must be a JSON Schema object"
    awaited: set[str] = set()  # tool call ids an assistant message asked for, not yet answered
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return f"messages[{index}].role: must be one of {sorted(ROLES)}"
        if awaited and role != "tool":
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {sorted(awaited)}"
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in awaited:
                return (
                    f"messages[{index}]: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'."
                )
            awaited.discard(call_id)
            if not isinstance(message.get("content"), str):
                return f"messages[{index}].content: a tool message's content is a string"
        elif role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                try:
                    json.loads(function.get("arguments", ""))
                except ValueError:
                    return f"messages[{index}]: tool call arguments must be a JSON string"
                awaited.add(call.get("id"))
        elif message.get("content") is None:
            return f"messages[{index}].content: required"
    if awaited:
        return f"tool calls without a tool message: {sorted(awaited)}"
    return None


class FakeOpenAI(LoopbackServer):
    """`POST /v1/chat/completions`, streaming. Point `OPENAI_BASE_URL` at `base_url + "/v1"`.

    Attributes:
        requests: The JSON bodies of the completions it accepted.
    """

    name = "fake-openai"

    def __init__(
        self,
        api_key: str = "sk-test-key",
        tool_calls: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
        reply_to_tool: Callable[[Any], str] | None = None,
        complete: Callable[[list[dict[str, Any]]], str] | None = None,
    ) -> None:
        """Script the fake.

        Args:
            api_key: The key requests must carry.
            tool_calls: A word the caller may say → the tool to call and its arguments.
            reply_to_tool: The answer once a tool's result is back (given the result).
            complete: The answer to a request that is not streamed (given its messages).
        """
        super().__init__()
        self.api_key = api_key
        self.tool_calls = dict(tool_calls or {})
        self.reply_to_tool = reply_to_tool or (lambda result: f"The tool said {result}.")
        self.complete = complete or (lambda messages: str(messages[-1].get("content") or ""))
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._call_ids = 0

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return _error(404, f"no route {request.method} {request.path}", "invalid_request_error")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The body is not valid JSON.", "invalid_request_error")
        if (problem := request_problem(body)) is not None:
            return _error(400, problem, "invalid_request_error")
        with self._lock:
            self._requests.append(body)

        model, messages = body["model"], body["messages"]
        if not body.get("stream"):
            return web.json_response(_completion(model, self.complete(messages)))
        last_user = max(i for i, m in enumerate(messages) if m["role"] in ("user", "system"))
        said = str(messages[last_user].get("content") or "") if last_user else ""
        results = [m["content"] for m in messages[last_user:] if m["role"] == "tool"]
        offered = {t["function"]["name"] for t in body.get("tools") or []}
        wanted = next(
            (call for word, call in self.tool_calls.items() if word in said.lower()), None
        )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if results and results[-1] != "IN_PROGRESS":
            await self._say(response, model, self.reply_to_tool(json.loads(results[-1])))
        elif "goodbye" in said.lower() and "end_call" in offered:
            await self._call_tool(response, model, "end_call", {})
        elif wanted is not None and wanted[0] in offered:
            await self._call_tool(response, model, *wanted)
        else:
            await self._say(response, model, f"You said: {said.strip()}")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _say(self, response: web.StreamResponse, model: str, text: str) -> None:
        head, _, rest = text.partition(" ")
        await response.write(_chunk(model, {"role": "assistant", "content": head + " "}))
        await response.write(_chunk(model, {"content": rest}))
        await response.write(_chunk(model, {}, "stop"))

    async def _call_tool(
        self, response: web.StreamResponse, model: str, name: str, arguments: dict[str, Any]
    ) -> None:
        with self._lock:
            self._call_ids += 1
            call_id = f"call_fake_{self._call_ids}"
        start = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        await response.write(
            _chunk(model, {"role": "assistant", "content": None, "tool_calls": [start]})
        )
        text = json.dumps(arguments)
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            await response.write(_chunk(model, delta))
        await response.write(_chunk(model, {}, "tool_calls"))
