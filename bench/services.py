"""Instant, deterministic voice services for the benchmark: no model cost.

With them the benchmark measures the server and the framework, not Whisper or
Piper. They are ordinary Pipecat services (queues, tasks, frames as a real
service has), used identically by Switchboard and the stock-Pipecat baseline:

    BenchSTT   a finalized transcript the moment VAD says the caller stopped
    BenchLLM   one fixed short answer to every user turn
    BenchTTS   one prerecorded 8 kHz clip for every sentence

They never run on the production path: only `bench/` builds them.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

from pipecat.audio.utils import create_file_resampler
from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.utils.time import time_now_iso8601

from settings import Settings
from voice import VoiceStack

CLIP_RATE = 8000
TRANSCRIPT = "What time do you open tomorrow?"
ANSWER = "We open at nine in the morning."


def read_clip(path: str | Path) -> bytes:
    """The PCM of an 8 kHz mono 16-bit WAV file, as the bench TTS plays it.

    Raises:
        ValueError: The file is not 8 kHz mono 16-bit.
    """
    with wave.open(str(path), "rb") as wav:
        shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
        if shape != (CLIP_RATE, 1, 2):
            raise ValueError(f"{path}: need 8 kHz mono 16-bit, got {shape}")
        return wav.readframes(wav.getnframes())


class BenchSTT(STTService):
    """Says the caller said `TRANSCRIPT`, finalized, as soon as VAD reports a stop."""

    def __init__(self, text: str = TRANSCRIPT) -> None:
        """Transcribe every utterance as `text`."""
        super().__init__(ttfs_p99_latency=0.0, settings=STTSettings(model=None, language=None))
        self._text = text

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Streaming STT gets every audio chunk; this one has nothing to say about it."""
        return
        yield  # an async generator that yields nothing

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass frames on; after a VAD stop, push the utterance's final transcript."""
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            await self.push_frame(
                TranscriptionFrame(self._text, "", time_now_iso8601(), finalized=True)
            )


class BenchLLM(FrameProcessor):
    """Sits where the LLM would and answers every user turn with `ANSWER`."""

    def __init__(self, answer: str = ANSWER) -> None:
        """Answer every context with `answer`."""
        super().__init__()
        self._answer = answer

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Answer `LLMContextFrame`s at once; pass everything else through."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(self._answer))
        await self.push_frame(LLMFullResponseEndFrame())


class BenchTTS(TTSService):
    """Speaks every sentence as the same prerecorded clip."""

    def __init__(self, clip: bytes, clip_rate: int = CLIP_RATE) -> None:
        """Play `clip` (16-bit mono PCM at `clip_rate`) for each sentence."""
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice="bench", language=None),
        )
        self._clip = clip
        self._clip_rate = clip_rate
        self._clips: dict[int, bytes] = {}  # the clip resampled, by output rate

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Yield the clip as one chunk, as a local TTS yields a sentence."""
        rate = self.sample_rate
        if rate not in self._clips:
            resampler = create_file_resampler()
            self._clips[rate] = await resampler.resample(self._clip, self._clip_rate, rate)
        yield TTSAudioRawFrame(self._clips[rate], rate, 1, context_id=context_id)


@dataclass
class BenchVoiceStack(VoiceStack):
    """Switchboard's voice stack with the bench services in place of the models.

    VAD stays the production one (shared Silero), so what the benchmark
    measures is what a real call costs, minus the models' own work.
    """

    clip: bytes = b""

    @classmethod
    def create(cls, settings: Settings, clip: bytes) -> BenchVoiceStack:
        """Load Silero (the one model VAD needs) and keep `clip` for the TTS."""
        from voice.pipecat import offline

        return cls(settings=settings, silero=offline.load_silero(), clip=clip)

    @property
    def is_agent_echo(self) -> bool:
        """The bench LLM stands for an LLM: Switchboard greets with its configured greeting."""
        return False

    def stt(self, language: str | None = None) -> FrameProcessor:
        """A call's instant STT."""
        return BenchSTT()

    def agent(self, instructions: str = "", model: str | None = None) -> FrameProcessor:
        """A call's instant LLM (it follows no instructions)."""
        return BenchLLM()

    def tts(self, voice: str | None = None, language: str | None = None) -> FrameProcessor:
        """A call's instant TTS."""
        return BenchTTS(self.clip)
