"""The echo agent: the offline stand-in for an LLM, since no usable LLM installs offline.

It greets the caller, answers each utterance with "I heard: ...", names the keys
pressed, and on "goodbye" says farewell and ends the call.
"""

from __future__ import annotations

import re

from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

GREETING = "Hello! Say something and I will repeat it. Say goodbye to hang up."
FAREWELL = "Goodbye! Thanks for calling."
DTMF_PREFIX = "DTMF: "
BOT_ENDED = "bot ended the call"
_GOODBYE = re.compile(r"\b(good\s*-?\s*bye|bye)\b", re.IGNORECASE)
_KEY_NAMES = dict(
    zip(
        "0123456789*#",
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "star",
            "pound",
        ],
        strict=True,
    )
)


def reply_to(text: str) -> tuple[str, bool]:
    """What the echo agent says to one user message, and whether it then hangs up."""
    text = text.strip()
    if text.startswith(DTMF_PREFIX):
        keys = [_KEY_NAMES.get(k, k) for k in text.removeprefix(DTMF_PREFIX).strip()]
        return f"You pressed {' and '.join(keys)}.", False
    if _GOODBYE.search(text):
        return FAREWELL, True
    return f"I heard: {text}", False


def last_user_text(context: LLMContext) -> str | None:
    """The text of the most recent user message, if any."""
    for message in reversed(context.get_messages()):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return None


class EchoAgent(FrameProcessor):
    """Sits where the LLM would and answers each user turn from the context."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Answer `LLMContextFrame`s; pass everything else through."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        text = last_user_text(frame.context)
        if not text:
            return
        answer, hang_up = reply_to(text)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(answer))
        await self.push_frame(LLMFullResponseEndFrame())
        if hang_up:
            await self.push_frame(EndWorkerFrame(reason=BOT_ENDED))
