"""Cloud voice services, used when their keys are set: Deepgram, OpenAI(-compatible), Cartesia."""

from __future__ import annotations

from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.llm import OpenAILLMService

from settings import Settings


def deepgram_stt(settings: Settings) -> DeepgramSTTService:
    """Deepgram streaming STT at the call's own rate (no resampling)."""
    assert settings.deepgram_api_key is not None
    return DeepgramSTTService(api_key=settings.deepgram_api_key.get_secret_value())


def openai_llm(settings: Settings, instructions: str) -> OpenAILLMService:
    """OpenAI, or any OpenAI-compatible server when `OPENAI_BASE_URL` is set (Ollama, vLLM)."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
    base_url = str(settings.openai_base_url) if settings.openai_base_url else None
    return OpenAILLMService(
        api_key=key,
        base_url=base_url,
        settings=OpenAILLMService.Settings(
            model=settings.openai_model, system_instruction=instructions
        ),
    )


def cartesia_tts(settings: Settings) -> CartesiaTTSService:
    """Cartesia streaming TTS."""
    assert settings.cartesia_api_key is not None
    return CartesiaTTSService(
        api_key=settings.cartesia_api_key.get_secret_value(),
        settings=CartesiaTTSService.Settings(voice=settings.cartesia_voice_id),
    )
