"""The whisper: who is calling and why, for the agent who answers a transfer.

The LLM's summary when an LLM is configured (one OpenAI-compatible request, short
and bounded in time); the conversation's last turns otherwise, or when the LLM
fails. Nothing of it is logged: it is what the caller said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from loguru import logger

from config.voice import LLMChoice
from settings import Settings

MAX_SUMMARY_CHARS = 600
LAST_TURNS = 4
SUMMARY_TIMEOUT_SECS = 6.0
OPENAI_API = "https://api.openai.com/v1"
INSTRUCTIONS = (
    "Summarise this phone call for the human agent it is being transferred to, in one "
    "or two short spoken sentences: who is calling and what they want. Plain words only."
)

Turns = Sequence[tuple[str, str]]  # (role: "user" or "assistant", text)


def last_turns(turns: Turns, target: str) -> str:
    """The last few turns, as the agent would hear them read out."""
    said = [
        f"{'The caller' if role == 'user' else 'The assistant'} said: {text.strip()}"
        for role, text in turns[-LAST_TURNS:]
        if text.strip()
    ]
    opening = f"A call transferred to {target}."
    return " ".join([opening, *said])[:MAX_SUMMARY_CHARS] if said else opening


async def summarize(settings: Settings, turns: Turns, target: str, model: str | None) -> str:
    """The summary the agent hears; never raises (the last turns stand in for the LLM)."""
    if settings.llm is not LLMChoice.OPENAI or not turns:
        return last_turns(turns, target)
    try:
        async with asyncio.timeout(SUMMARY_TIMEOUT_SECS):
            text = await _ask_llm(settings, turns, model or settings.openai_model)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError) as e:
        logger.warning(f"Transfer: the LLM gave no summary ({type(e).__name__}); the last turns")
        return last_turns(turns, target)
    return text.strip()[:MAX_SUMMARY_CHARS] or last_turns(turns, target)


async def _ask_llm(settings: Settings, turns: Turns, model: str) -> str:
    base = str(settings.openai_base_url or OPENAI_API).rstrip("/")
    key = settings.openai_api_key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    transcript = "\n".join(
        f"{'Caller' if role == 'user' else 'Assistant'}: {text}" for role, text in turns
    )
    body = {
        "model": model,
        "stream": False,
        "messages": [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": transcript},
        ],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/chat/completions", json=body, headers=headers) as answer,
    ):
        if answer.status != 200:
            raise ValueError(f"the LLM answered {answer.status}")
        reply = await answer.json()
    return str(reply["choices"][0]["message"]["content"] or "")
