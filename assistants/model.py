"""What an assistants file declares: named assistants, the HTTP tools they may use, prompts.

    prompts:
      support: "You are Acme's support line. …"
    tools:
      order_status:
        description: Look up where an order is.
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        url: https://crm.example.com/tools/order-status
    assistants:
      support:
        numbers: ["+15551230000"]
        default: true
        system_prompt: {prompt: support}
        greeting: Thanks for calling Acme. How can I help?
        tools: [order_status]

Unknown keys are errors, so a misspelt key never silently does nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pipecat.transcriptions.language import Language
from pydantic import BaseModel, ConfigDict, Field, field_validator

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# The bot's own tools: an assistants file cannot declare tools by these names.
BUILT_IN_TOOLS = frozenset({"end_call", "press_keys"})
DEFAULT_FILLER = "One moment."
DEFAULT_TOOL_TIMEOUT = 5.0

Name = Annotated[str, Field(pattern=NAME.pattern)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptRef(Strict):
    """A prompt by name, from the file's `prompts`."""

    prompt: Name


Text = Annotated[str, Field(min_length=1, max_length=20_000)]


class Tool(Strict):
    """An HTTP tool: the LLM calls it by `name`; Switchboard POSTs the arguments to `url`.

    Attributes:
        name: The name the LLM calls it by (the key in `tools`).
        description: What it does, for the LLM.
        parameters: A JSON Schema (an object) of its arguments.
        url: Where the signed request goes (http or https).
        timeout: Seconds to wait for the answer.
        secret_env: The environment variable holding this tool's signing secret
            (else `WEBHOOK_SECRET`).
    """

    name: Name = ""
    description: Text
    parameters: dict[str, Any]
    url: Annotated[str, Field(max_length=2000)]
    timeout: float = Field(DEFAULT_TOOL_TIMEOUT, gt=0, le=60)
    secret_env: str | None = Field(None, pattern=r"[A-Z_][A-Z0-9_]*")

    @field_validator("parameters")
    @classmethod
    def _json_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError('the parameters schema must be {"type": "object", …}')
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as e:
            raise ValueError(f"not a valid JSON Schema: {e.message}") from None
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value[:80]!r} is not an http(s) URL")
        return value


class Assistant(Strict):
    """One assistant: who answers a number, how it sounds, what it may do.

    Attributes:
        name: Its name (the key in `assistants`).
        numbers: The numbers it answers (E.164), for inbound calls.
        default: Answers calls to any other number, and placed calls that name none.
        system_prompt: Text, or `{prompt: NAME}`; else `SYSTEM_PROMPT`.
        greeting: Text, or `{prompt: NAME}`; else `GREETING` (the echo agent's own greeting).
        language: BCP-47 language for speech services that take one (Deepgram, Cartesia).
        voice: The TTS voice (a Cartesia voice id); else `CARTESIA_VOICE_ID`.
        llm_model: The LLM model; else `OPENAI_MODEL`.
        vad_stop_secs: Silence that ends a stretch of speech; else `VAD_STOP_SECS`.
        user_pause_secs: How long after that the caller's turn ends, unless they go on.
        tools: Names from the file's `tools` this assistant may call (`end_call` always;
            `press_keys` offers that built-in tool on all its calls).
        filler: Said when a tool has not answered within a second.
        transfer_targets: Where calls may be transferred, by name (call control).
        recording: Whether calls are recorded (call control).
        events_url: Where this assistant's call events go; else `EVENTS_URL`.
    """

    name: Name = ""
    numbers: list[str] = Field(default_factory=list, max_length=1000)
    default: bool = False
    system_prompt: Text | PromptRef | None = None
    greeting: Text | PromptRef | None = None
    language: str | None = None
    voice: str | None = Field(None, max_length=200)
    llm_model: str | None = Field(None, max_length=200)
    vad_stop_secs: float | None = Field(None, gt=0, le=3)
    user_pause_secs: float | None = Field(None, ge=0, le=5)
    tools: list[Name] = Field(default_factory=list)
    filler: str = Field(DEFAULT_FILLER, max_length=200)
    transfer_targets: dict[Name, str] = Field(default_factory=dict)
    recording: Literal["off", "on", "on-consent"] = "off"
    events_url: str | None = Field(None, max_length=2000)

    @field_validator("numbers", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        # YAML reads +15551234567 unquoted as a number, and drops its "+".
        if isinstance(value, list) and any(isinstance(n, int | float) for n in value):
            raise ValueError('write numbers in quotes, e.g. ["+15551234567"]')
        return value

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: list[str]) -> list[str]:
        for number in value:
            if not E164.fullmatch(number):
                raise ValueError(f"{number!r} is not an E.164 number like +15551234567")
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Language(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a language tag like en or en-US") from None
        return value

    @field_validator("events_url")
    @classmethod
    def _events_http_url(cls, value: str | None) -> str | None:
        return None if value is None else Tool._http_url(value)

    @property
    def public(self) -> dict[str, Any]:
        """What `GET /assistants` shows of it."""
        return self.model_dump(mode="json")


class AssistantsFile(Strict):
    """The whole file: `assistants`, and the `tools` and `prompts` they refer to."""

    assistants: dict[Name, Assistant] = Field(min_length=1)
    tools: dict[Name, Tool] = Field(default_factory=dict)
    prompts: dict[Name, Text] = Field(default_factory=dict)
