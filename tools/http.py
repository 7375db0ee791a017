"""`ToolClient`: calls an assistant's HTTP tool for the LLM, and always comes back with an answer.

    client = ToolClient(settings)
    outcome = await client.call(tool, {"order_id": "42"}, caller)  # never raises
    outcome.result   # the tool's JSON answer, or {"error": "…"} for the LLM to talk about

The arguments are checked against the tool's JSON Schema before anything is
sent. The request is a signed Standard Webhooks POST:

    {"tool": "order_status", "arguments": {...},
     "call": {"call_sid", "from", "to", "direction", "assistant", "parameters"}}

Whatever goes wrong (bad arguments, a timeout, a 4xx/5xx, an answer that is
not JSON, a host that is not public) comes back as an `error` result with an
`outcome` naming it, so the LLM can tell the caller and the metrics count it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import aiohttp
from dotenv import dotenv_values
from jsonschema import Draft202012Validator
from loguru import logger

from assistants.model import Tool
from settings import Settings
from tools.guard import PrivateAddressRefused, http_session, literal_host_refusal
from tools.signing import Signer, new_message_id

if TYPE_CHECKING:
    from tools.metrics import ToolMetrics

# A tool's answer goes into the LLM's context: more than this is refused.
MAX_ANSWER_BYTES = 64 * 1024


class ToolOutcomeKind(StrEnum):
    """How a tool call went (the `outcome` label of `switchboard_tool_calls_total`)."""

    OK = "ok"
    INVALID_ARGUMENTS = "invalid_arguments"
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"
    INVALID_ANSWER = "invalid_answer"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call gave the LLM.

    Attributes:
        result: The tool's JSON answer, or `{"error": …}`.
        kind: How it went.
        seconds: From the LLM's call to the answer.
        status: The HTTP status, when the tool answered.
    """

    result: Any
    kind: ToolOutcomeKind
    seconds: float
    status: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the tool answered with JSON."""
        return self.kind is ToolOutcomeKind.OK

    @property
    def details(self) -> dict[str, Any]:
        """How it went, for the call's `tool.called` event."""
        return {"outcome": str(self.kind), "seconds": round(self.seconds, 3), "status": self.status}


class ToolClient:
    """The server's HTTP client for tools: one connection pool, signers by secret."""

    def __init__(self, settings: Settings, metrics: ToolMetrics | None = None) -> None:
        """Sign with `WEBHOOK_SECRET` (or a tool's own `secret_env`); guard unless allowed.

        Args:
            settings: The signing secret and `TOOLS_ALLOW_PRIVATE`.
            metrics: Where the calls' tool calls are counted.
        """
        self._settings = settings
        self.metrics = metrics
        self._allow_private = settings.tools_allow_private
        self._session: aiohttp.ClientSession | None = None
        self._signers: dict[str | None, Signer] = {}
        self._validators: dict[str, Draft202012Validator] = {}

    def _signer(self, tool: Tool) -> Signer:
        signer = self._signers.get(tool.secret_env)
        if signer is None:
            if tool.secret_env is None:
                assert self._settings.webhook_secret is not None  # checked when loaded
                secret = self._settings.webhook_secret.get_secret_value()
            else:
                name = tool.secret_env
                secret = os.environ.get(name) or str(dotenv_values(".env").get(name) or "")
            signer = self._signers[tool.secret_env] = Signer(secret)
        return signer

    def _validator(self, tool: Tool) -> Draft202012Validator:
        # By the schema's text: the same tool in a reloaded file keeps its validator.
        key = json.dumps(tool.parameters, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = Draft202012Validator(tool.parameters)
        return validator

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], caller: Mapping[str, Any]
    ) -> ToolOutcome:
        """Call `tool` with the LLM's `arguments` for the call `caller` describes.

        Args:
            tool: The tool, from the call's assistant.
            arguments: What the LLM passed.
            caller: The call's identity (`call_sid`, `from`, `to`, …).
        """
        started = time.monotonic()

        def outcome(kind: ToolOutcomeKind, result: Any, status: int | None = None) -> ToolOutcome:
            return ToolOutcome(result, kind, time.monotonic() - started, status)

        errors = sorted(self._validator(tool).iter_errors(dict(arguments)), key=str)
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "arguments"
            message = f"invalid arguments ({where}: {errors[0].message}); nothing was sent"
            return outcome(ToolOutcomeKind.INVALID_ARGUMENTS, {"error": message})
        if not self._allow_private and (refusal := literal_host_refusal(tool.url)):
            message = f"the tool is unreachable: {refusal}"
            return outcome(ToolOutcomeKind.REFUSED, {"error": message})
        body = json.dumps(
            {"tool": tool.name, "arguments": dict(arguments), "call": dict(caller)},
            ensure_ascii=False,
        )
        headers = self._signer(tool).headers(new_message_id(), body)
        if self._session is None:
            self._session = http_session(allow_private=self._allow_private)
        try:
            async with asyncio.timeout(tool.timeout):
                async with self._session.post(tool.url, data=body, headers=headers) as response:
                    raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                    status = response.status
        except TimeoutError:
            message = f"the tool did not answer within {tool.timeout:g} seconds"
            return outcome(ToolOutcomeKind.TIMEOUT, {"error": message})
        except aiohttp.ClientConnectorError as e:
            refused = isinstance(e.os_error, PrivateAddressRefused)
            kind = ToolOutcomeKind.REFUSED if refused else ToolOutcomeKind.UNREACHABLE
            logger.warning(f"Tool {tool.name}: cannot connect: {e.os_error}")
            return outcome(kind, {"error": "the tool could not be reached"})
        except (aiohttp.ClientError, OSError) as e:
            logger.warning(f"Tool {tool.name}: request failed: {e}")
            return outcome(ToolOutcomeKind.UNREACHABLE, {"error": "the tool could not be reached"})
        if status >= 400:
            return outcome(
                ToolOutcomeKind.HTTP_ERROR, {"error": f"the tool failed (HTTP {status})"}, status
            )
        if len(raw) > MAX_ANSWER_BYTES:
            message = f"the tool's answer is over {MAX_ANSWER_BYTES // 1024} KB"
            return outcome(ToolOutcomeKind.INVALID_ANSWER, {"error": message}, status)
        try:
            result = json.loads(raw)
        except ValueError:
            message = "the tool's answer is not JSON"
            return outcome(ToolOutcomeKind.INVALID_ANSWER, {"error": message}, status)
        return outcome(ToolOutcomeKind.OK, result, status)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
