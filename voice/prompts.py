"""Recorded speech for the bot: WAV prompts by name, and each greeting synthesised once.

- `load_prompt`: a WAV file in `PROMPTS_DIR`, as the call's PCM16 at its rate.
- `GreetingCache`: what the TTS said for a (voice, rate, text), kept the first
  time a call speaks it, so later calls play it at once instead of waiting on
  the TTS (a cloud TTS takes a second or more to start).
- `PromptPlayer`, between the TTS and the output transport: plays `PromptFrame`s
  as the bot's speech (interruptible, and on the transcript when they carry
  text), and captures the TTS audio between `CaptureStart` and `CaptureEnd`
  for the cache. Frames queued into the pipeline reach it in order with
  what the TTS says: the TTS keeps frames behind the speech before them.

Errors (for the API's 422):

    PromptError (ValueError)
    ├── BadPromptName    not a plain file name: a path, or odd characters
    └── PromptUnusable   missing, not a PCM16 WAV, empty or too long
"""

from __future__ import annotations

import asyncio
import re
import wave
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr
from loguru import logger
from pipecat.frames.frames import (
    DataFrame,
    Frame,
    InterruptionFrame,
    LLMAssistantPushAggregationFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.text.base_text_aggregator import TextType

# A prompt's name: a plain file name, `.wav` optional.
PROMPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_PROMPT_SECS = 600
GREETINGS_KEPT = 64

GreetingKey = tuple[str, int, str]  # (voice, sample rate, text)


class PromptError(ValueError):
    """A prompt that cannot be played."""


class BadPromptName(PromptError):
    """A prompt name that is not a plain file name."""


class PromptUnusable(PromptError):
    """A prompt file that is missing or not a PCM16 WAV of sensible length."""


def prompt_path(directory: Path, name: str) -> Path:
    """Where the prompt `name` lives in `directory`.

    Raises:
        BadPromptName: `name` holds a path or characters a prompt name may not.
    """
    if not PROMPT_NAME.fullmatch(name) or ".." in name:
        raise BadPromptName(f"{name[:80]!r} is not a prompt name (a file name in PROMPTS_DIR)")
    return directory / (name if name.lower().endswith(".wav") else f"{name}.wav")


def load_prompt(directory: Path, name: str, sample_rate: int) -> bytes:
    """The prompt `name` as mono PCM16 at `sample_rate` (blocking: run it in a thread).

    Raises:
        BadPromptName: `name` is not a plain file name.
        PromptUnusable: No such file, or not a PCM16 WAV of up to `MAX_PROMPT_SECS`.
    """
    path = prompt_path(directory, name)
    try:
        stat = path.stat()
    except OSError:
        raise PromptUnusable(f"no prompt {name!r} in PROMPTS_DIR") from None
    return _decoded(str(path), stat.st_mtime_ns, stat.st_size, sample_rate)


@lru_cache(maxsize=32)
def _decoded(path: str, _mtime: int, _size: int, sample_rate: int) -> bytes:
    # Keyed by the file's change time and size too: an edited prompt is read again.
    name = Path(path).name
    try:
        with wave.open(path, "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            if wav.getnframes() > MAX_PROMPT_SECS * rate:
                raise PromptUnusable(f"prompt {name!r} is over {MAX_PROMPT_SECS} s")
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise PromptUnusable(f"prompt {name!r} is not a readable WAV: {e}") from None
    if width != 2 or not frames:
        raise PromptUnusable(f"prompt {name!r} must be 16-bit PCM with some audio in it")
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).mean(axis=1)
    if rate != sample_rate:
        samples = soxr.resample(samples, rate, sample_rate)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


class GreetingCache:
    """The TTS audio of the greetings (and notices) calls have said, by voice, rate and text."""

    def __init__(self, size: int = GREETINGS_KEPT) -> None:
        self._audio: OrderedDict[GreetingKey, bytes] = OrderedDict()
        self._size = size

    def get(self, key: GreetingKey) -> bytes | None:
        """The audio kept for `key`, if any."""
        audio = self._audio.get(key)
        if audio is not None:
            self._audio.move_to_end(key)
        return audio

    def put(self, key: GreetingKey, audio: bytes) -> None:
        """Keep `audio` for `key`; the least recently used entry goes beyond `size`."""
        self._audio[key] = audio
        self._audio.move_to_end(key)
        while len(self._audio) > self._size:
            self._audio.popitem(last=False)

    def speech(self, key: GreetingKey) -> list[Frame]:
        """The frames that say `key`'s text: its kept audio, or the TTS (captured for next time)."""
        audio = self.get(key)
        if audio is not None:
            return [PromptFrame(audio=audio, sample_rate=key[1], text=key[2])]
        return [CaptureStart(key=key), TTSSpeakFrame(key[2]), CaptureEnd(key=key)]


async def opening(
    cache: GreetingCache,
    voice: tuple[str, int],
    *,
    notice: str,
    greeting: str,
    greeting_audio: str | None,
    prompts_dir: Path,
) -> list[Frame]:
    """What a call's bot says first: the recording `notice` (if any), then the greeting.

    The greeting is the `greeting_audio` prompt when the call names one (the
    text if it cannot be played), else the `greeting` text, from the cache
    when this `voice` (name, rate) said it before.
    """
    name, rate = voice
    frames = cache.speech((name, rate, notice)) if notice else []
    if greeting_audio:
        try:
            audio = await asyncio.to_thread(load_prompt, prompts_dir, greeting_audio, rate)
            return [*frames, PromptFrame(audio=audio, sample_rate=rate)]
        except PromptError as e:
            logger.warning(f"greeting_audio: {e}; greeting with the text instead")
    return frames + cache.speech((name, rate, greeting))


@dataclass
class PromptFrame(DataFrame):
    """Recorded speech to play as the bot's, after what the bot is saying.

    Parameters:
        audio: Mono PCM16 at `sample_rate` (the call's).
        sample_rate: The audio's rate.
        text: What it says, for the transcript and the LLM's context; None for neither.
    """

    audio: bytes
    sample_rate: int
    text: str | None = None


@dataclass
class CaptureStart(DataFrame):
    """The TTS audio from here to `CaptureEnd` says `key`'s text: keep it."""

    key: GreetingKey


@dataclass
class CaptureEnd(DataFrame):
    """The end of the TTS audio `CaptureStart` began."""

    key: GreetingKey


class PromptPlayer(FrameProcessor):
    """Plays `PromptFrame`s as the bot's speech, and fills the `GreetingCache`.

    Direct mode: it runs in the TTS's task, so it adds no hop to the bot's audio.
    """

    def __init__(self, cache: GreetingCache) -> None:
        """Keep captured greetings in `cache`."""
        super().__init__(name="PromptPlayer", enable_direct_mode=True)
        self._cache = cache
        self._capture: tuple[GreetingKey, bytearray] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Play prompts, capture greetings; pass everything else on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, PromptFrame):
            await self._play(frame)
            return
        if isinstance(frame, CaptureStart):
            self._capture = (frame.key, bytearray())
            return
        if isinstance(frame, CaptureEnd):
            if self._capture is not None and self._capture[0] == frame.key and self._capture[1]:
                self._cache.put(frame.key, bytes(self._capture[1]))
            self._capture = None
            return
        if isinstance(frame, InterruptionFrame):
            self._capture = None  # cut short: not the whole greeting
        elif self._capture is not None and isinstance(frame, TTSAudioRawFrame):
            self._capture[1].extend(frame.audio)
        await self.push_frame(frame, direction)

    async def _play(self, frame: PromptFrame) -> None:
        # What a TTS service pushes for one utterance, so the output transport,
        # the assistant aggregator and the transcript treat it alike.
        context = f"prompt-{frame.id}"
        spoken = frame.text is not None
        await self.push_frame(TTSStartedFrame(context_id=context, append_to_context=spoken))
        await self.push_frame(
            TTSAudioRawFrame(frame.audio, frame.sample_rate, 1, context_id=context)
        )
        if frame.text is not None:
            await self.push_frame(
                TTSTextFrame(frame.text, text_type=TextType.SENTENCE, context_id=context)
            )
        await self.push_frame(TTSStoppedFrame(context_id=context))
        if spoken:
            await self.push_frame(LLMAssistantPushAggregationFrame())
