"""Voice services: speech-to-text, the agent (LLM or echo), text-to-speech, and VAD.

`VoiceStack.load(settings)` runs once per process and loads whatever is heavy;
its methods then build each call's own light services around it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.processors.frame_processor import FrameProcessor

from config.voice import LLMChoice, STTChoice, TTSChoice
from settings import Settings
from voice import cloud
from voice.echo import EchoAgent
from voice.prompts import GreetingCache

if TYPE_CHECKING:
    from voice.pipecat.vad import FastSileroVAD


@dataclass
class VoiceStack:
    """The process-wide voice models and the per-call services built on them."""

    settings: Settings
    whisper: Any = None
    piper: Any = None
    silero: Any = None
    greetings: GreetingCache = field(default_factory=GreetingCache)

    @classmethod
    async def load(cls, settings: Settings) -> VoiceStack:
        """Load the models the settings choose, off the event loop."""
        from voice.pipecat import offline

        stack = cls(settings)
        stack.silero = await asyncio.to_thread(offline.load_silero)
        if settings.stt is STTChoice.WHISPER:
            stack.whisper = await asyncio.to_thread(offline.load_whisper)
        if settings.tts is TTSChoice.PIPER:
            stack.piper = await asyncio.to_thread(offline.load_piper)
        logger.info(f"Voice services: stt={settings.stt} llm={settings.llm} tts={settings.tts}")
        return stack

    def for_settings(self, settings: Settings) -> VoiceStack:
        """The same loaded models, choosing services by other settings (an app of its own)."""
        return replace(self, settings=settings)

    @property
    def is_agent_echo(self) -> bool:
        """Whether the agent is the offline echo agent rather than an LLM."""
        return self.settings.llm is LLMChoice.ECHO

    def voice_name(self, voice: str | None = None) -> str:
        """The TTS voice a call speaks with (`voice` overrides the default); caches key on it."""
        if self.settings.tts is TTSChoice.CARTESIA:
            return f"cartesia:{voice or self.settings.cartesia_voice_id}"
        return "piper:en_US-joe-medium"

    def vad(self, stop_secs: float | None = None) -> FastSileroVAD:
        """A call's voice activity detector; `stop_secs` overrides `VAD_STOP_SECS`."""
        from voice.pipecat.vad import FastSileroVAD

        stop = self.settings.vad_stop_secs if stop_secs is None else stop_secs
        return FastSileroVAD(self.silero, params=VADParams(stop_secs=stop))

    def stt(self, language: str | None = None) -> FrameProcessor:
        """A call's speech-to-text service (`language` for Deepgram; Whisper tiny.en is English)."""
        if self.settings.stt is STTChoice.DEEPGRAM:
            return cloud.deepgram_stt(self.settings, language)
        from voice.pipecat.offline import SharedWhisperSTT

        return SharedWhisperSTT(self.whisper)

    def agent(self, instructions: str, model: str | None = None) -> FrameProcessor:
        """A call's agent: the LLM service with the call's system prompt, or the echo agent."""
        if self.settings.llm is LLMChoice.OPENAI:
            return cloud.openai_llm(self.settings, instructions, model)
        return EchoAgent()

    def tts(self, voice: str | None = None, language: str | None = None) -> FrameProcessor:
        """A call's text-to-speech service (`voice` and `language` for Cartesia; Piper has one)."""
        if self.settings.tts is TTSChoice.CARTESIA:
            return cloud.cartesia_tts(self.settings, voice, language)
        from voice.pipecat.offline import SharedPiperTTS

        return SharedPiperTTS(self.piper)
