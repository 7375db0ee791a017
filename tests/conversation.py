"""What the spoken-call tests share: the caller's voice, the words heard, and waiting out
the bot's side of a turn."""

from __future__ import annotations

import asyncio
import re

from simulator import SimulatedCall, synthesize

# Piper speaks sentence by sentence: on a busy machine the gap between two can pass a second.
QUIET = 2.0


def words(text: str) -> set[str]:
    """The lower-case words of `text`, for checks that forgive Whisper's punctuation.

    Whisper writes "goodbye" apart now and then ("good bye"): the same word.
    """
    return set(re.findall(r"[a-z]+", re.sub(r"\bgood[\s-]+bye\b", "goodbye", text.lower())))


async def speak(text: str) -> bytes:
    """The caller's voice: Piper speech as 8 kHz PCM16."""
    return await asyncio.to_thread(synthesize, text)


async def hear_greeting(
    call: SimulatedCall,
    timeout: float = 20,  # noqa: ASYNC109
) -> bytes:
    """Wait until the bot's first words have played out on a connected call.

    Args:
        call: The call, dialled or answered.
        timeout: Seconds to wait for the audio to start, and again for it to end.

    Returns:
        Everything the caller heard so far.
    """
    await call.wait_for_bot_audio(timeout=timeout)
    await call.wait_for_bot_quiet(QUIET, timeout=timeout)
    return call.heard


async def hear_reply(
    call: SimulatedCall,
    speech: bytes,
    timeout: float = 20,  # noqa: ASYNC109
) -> bytes:
    """Say `speech`, then wait until the bot's answer to it has played out.

    Args:
        call: The call, with the bot quiet.
        speech: What the caller says, 8 kHz PCM16.
        timeout: Seconds to wait for the answer to start, and again for it to end.

    Returns:
        What the caller heard from the moment they started speaking.
    """
    before = len(call.heard)
    said_at = await call.say(speech)
    await call.wait_for_bot_audio(after=said_at, timeout=timeout)
    await call.wait_for_bot_quiet(QUIET, timeout=timeout)
    return call.heard[before:]


async def hear_goodbye(
    call: SimulatedCall,
    speech: bytes,
    timeout: float = 30,  # noqa: ASYNC109
) -> bytes:
    """Say `speech` (a goodbye), then wait until the server ends the call.

    Args:
        call: The call, with the bot quiet.
        speech: What the caller says, 8 kHz PCM16.
        timeout: Seconds to wait for the call to close.

    Returns:
        What the caller heard from the moment they started speaking.
    """
    before = len(call.heard)
    await call.say(speech)
    await call.wait_closed(timeout=timeout)
    return call.heard[before:]
