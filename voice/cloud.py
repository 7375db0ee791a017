"""Cloud voice services, used when their keys are set: Deepgram, OpenAI(-compatible), Cartesia."""

from __future__ import annotations

from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transcriptions.language import Language

from settings import Settings


def deepgram_stt(settings: Settings, language: str | None = None) -> DeepgramSTTService:
    """Deepgram streaming STT at the call's own rate (no resampling), in `language` if given."""
    assert settings.deepgram_api_key is not None
    if language is None:
        return DeepgramSTTService(api_key=settings.deepgram_api_key.get_secret_value())
    return DeepgramSTTService(
        api_key=settings.deepgram_api_key.get_secret_value(),
        settings=DeepgramSTTService.Settings(language=Language(language)),
    )


def openai_llm(settings: Settings, instructions: str, model: str | None = None) -> OpenAILLMService:
    """OpenAI, or any OpenAI-compatible server when `OPENAI_BASE_URL` is set (Ollama, vLLM)."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
    base_url = str(settings.openai_base_url) if settings.openai_base_url else None
    return OpenAILLMService(
        api_key=key,
        base_url=base_url,
        settings=OpenAILLMService.Settings(
            model=model or settings.openai_model, system_instruction=instructions
        ),
    )


def cartesia_tts(
    settings: Settings, voice: str | None = None, language: str | None = None
) -> CartesiaTTSService:
    """Cartesia streaming TTS, in `voice` (else `CARTESIA_VOICE_ID`) and `language` if given."""
    assert settings.cartesia_api_key is not None
    chosen = CartesiaTTSService.Settings(voice=voice or settings.cartesia_voice_id)
    if language is not None:
        chosen.language = Language(language)
    return CartesiaTTSService(api_key=settings.cartesia_api_key.get_secret_value(), settings=chosen)
