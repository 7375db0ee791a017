"""The voice settings, mixed into `settings.Settings` (one class, read and validated there).

Which speech-to-text, agent and text-to-speech services calls use, their keys,
what the bot says by default, and how it listens.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)


class STTChoice(StrEnum):
    WHISPER = "whisper"
    DEEPGRAM = "deepgram"


class LLMChoice(StrEnum):
    ECHO = "echo"
    OPENAI = "openai"


class TTSChoice(StrEnum):
    PIPER = "piper"
    CARTESIA = "cartesia"


DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly assistant on a phone call. Your words are spoken aloud, "
    "so answer in one or two short sentences, with no lists, markdown or emoji. "
    "When the caller wants to end the call, say goodbye and call the end_call tool."
)
DEFAULT_GREETING = "Hello! How can I help you today?"


class VoiceSettings(BaseModel):
    """The voice services (unset: the cloud service whose key is set, else the local one)."""

    stt: STTChoice | None = None
    llm: LLMChoice | None = None
    tts: TTSChoice | None = None
    deepgram_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: AnyHttpUrl | None = None
    openai_model: str = "gpt-4o-mini"
    cartesia_api_key: SecretStr | None = None
    cartesia_voice_id: str = "71a7ad14-091c-4e8e-a314-022ece01c121"

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    greeting: str = DEFAULT_GREETING
    # WAV prompts played by name: the `greeting_audio` parameter, POST /calls/{sid}/play.
    prompts_dir: Path = Path("prompts")

    vad_stop_secs: float = Field(0.2, gt=0, le=3)
    # Caller audio per pipeline frame: 20 is each Twilio packet on its own; 40
    # halves the per-packet work of a call for ~10 ms more reply latency.
    audio_in_frame_ms: int = Field(40, ge=20, le=200)
    outbound_greeting_wait_secs: float = Field(3.0, ge=0, le=30)

    @field_validator("system_prompt", "greeting", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object, info: ValidationInfo) -> object:
        if value in ("", None):
            return DEFAULT_SYSTEM_PROMPT if info.field_name == "system_prompt" else DEFAULT_GREETING
        return value

    @model_validator(mode="after")
    def _choose_services(self) -> Self:
        if self.stt is None:
            self.stt = STTChoice.DEEPGRAM if self.deepgram_api_key else STTChoice.WHISPER
        if self.llm is None:
            self.llm = LLMChoice.OPENAI if self.openai_api_key else LLMChoice.ECHO
        if self.tts is None:
            self.tts = TTSChoice.CARTESIA if self.cartesia_api_key else TTSChoice.PIPER
        missing = [
            name
            for name, needed, key in (
                ("DEEPGRAM_API_KEY", self.stt is STTChoice.DEEPGRAM, self.deepgram_api_key),
                ("CARTESIA_API_KEY", self.tts is TTSChoice.CARTESIA, self.cartesia_api_key),
            )
            if needed and not key
        ]
        # An OpenAI-compatible local server (Ollama, vLLM) needs no key.
        if self.llm is LLMChoice.OPENAI and not (self.openai_api_key or self.openai_base_url):
            missing.append("OPENAI_API_KEY (or OPENAI_BASE_URL)")
        if missing:
            raise ValueError(f"the chosen voice services need {', '.join(missing)}")
        return self

    @property
    def runs_models(self) -> bool:
        """Whether Whisper or Piper runs in this process (they set the calls a core holds)."""
        return self.stt is STTChoice.WHISPER or self.tts is TTSChoice.PIPER
