"""Who the bot is on one call: what it is told, and what it says first.

Each comes from the call's parameters (`<Parameter>`s, dial-out parameters),
else its assistant (the assistants file), else the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settings import Settings
from telephony.call_info import CallInfo
from voice import VoiceStack
from voice.echo import GREETING as ECHO_GREETING

if TYPE_CHECKING:
    from assistants.model import Assistant

# Parameters that steer the bot rather than tell the LLM about the call.
STEERING_PARAMETERS = frozenset({"system_prompt", "greeting", "greeting_audio", "assistant"})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def system_prompt(call: CallInfo, settings: Settings, assistant: Assistant | None = None) -> str:
    """The call's system prompt: a `system_prompt` parameter, else the assistant's, else the
    default; plus call data."""
    prompt = (
        call.parameters.get("system_prompt")
        or (assistant and _text(assistant.system_prompt))
        or settings.system_prompt
    )
    data = {k: v for k, v in call.parameters.items() if k not in STEERING_PARAMETERS}
    facts = [f"This call is {call.direction}, from {call.from_number} to {call.to_number}."]
    if data:
        facts.append("Data for this call: " + ", ".join(f"{k}={v}" for k, v in data.items()) + ".")
    return f"{prompt}\n\n{' '.join(facts)}"


def greeting(
    call: CallInfo, voice: VoiceStack, settings: Settings, assistant: Assistant | None = None
) -> str:
    """What the bot says first: a `greeting` parameter, else the assistant's, else the
    agent's default."""
    if "greeting" in call.parameters:
        return call.parameters["greeting"]
    if assistant is not None and (text := _text(assistant.greeting)):
        return text
    return ECHO_GREETING if voice.is_agent_echo else settings.greeting
