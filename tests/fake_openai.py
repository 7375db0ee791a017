"""A fake OpenAI-compatible chat completions API on 127.0.0.1, for tests.

OpenAI is a paid outside service; this fake checks what it checks (a Bearer key,
a model, a non-empty message list) and streams answers in its server-sent-event
format. It is scripted: when the caller says goodbye and an `end_call` tool is
offered, it calls the tool; otherwise it answers "You said: <their words>".
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _error(status: int, message: str, kind: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


class FakeOpenAI(LoopbackServer):
    """`POST /v1/chat/completions`, streaming. Point `OPENAI_BASE_URL` at `base_url + "/v1"`.

    Attributes:
        requests: The JSON bodies of the completions it accepted.
    """

    name = "fake-openai"

    def __init__(self, api_key: str = "sk-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []

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
        messages = body.get("messages")
        if not body.get("model") or not isinstance(messages, list) or not messages:
            return _error(400, "'model' and a non-empty 'messages' are required.", "invalid")
        with self._lock:
            self._requests.append(body)

        model = body["model"]
        said = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
        tools = {t["function"]["name"] for t in body.get("tools") or []}
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if "goodbye" in str(said).lower() and "end_call" in tools:
            call = {
                "index": 0,
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": "end_call", "arguments": "{}"},
            }
            await response.write(_chunk(model, {"role": "assistant", "tool_calls": [call]}))
            await response.write(_chunk(model, {}, "tool_calls"))
        else:
            await response.write(_chunk(model, {"role": "assistant", "content": "You said: "}))
            await response.write(_chunk(model, {"content": f"{str(said).strip()}"}))
            await response.write(_chunk(model, {}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
