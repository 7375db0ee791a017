"""Whisper on a caller's utterance: one pass over a window fitted to the speech.

faster-whisper pads every input to Whisper's 30 s window, and the encoder's
cost grows faster than its input: for a two-second utterance tiny.en spends
~0.6 s of CPU encoding the padding. Encoded in a window of `MIN_WINDOW_SECS`
(the speech plus at least `MARGIN_SECS`, in `WINDOW_STEP_SECS` steps), the
suite's phrases come out word for word the same for a sixth of the cost.
Shorter windows are cheaper still, but tiny.en then loops ("Yes." → "F F F …").

A telephone utterance is one short stretch of speech, so the pass is
greedy (a beam search for the shortest, where it costs nothing), without
timestamps, conditioned on nothing said before, over the utterance with its
leading and trailing quiet trimmed (`trim_quiet`). Should the short window
ever loop anyway (its text compresses too well, as faster-whisper judges a
hallucination), the utterance is transcribed again the usual way, in the full
window.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

RATE = 16000
MIN_WINDOW_SECS = 10
WINDOW_STEP_SECS = 5
MARGIN_SECS = 2.0
FULL_WINDOW_SECS = 30
# faster-whisper's own thresholds for a hallucination and for silence.
MAX_COMPRESSION_RATIO = 2.4
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
# About three words a second, 1.3 tokens a word: room for twice that, and no endless loop.
TOKENS_PER_SEC = 8
# Up to this much speech the decoder searches 5 beams: a word or two ("Goodbye." heard as
# "bye" once, greedily) costs no more that way, and beyond it the encoder dominates less.
BEAM_MAX_SECS = 3.0
BEAM_SIZE = 5
# Trimming: 20 ms frames quieter than both of these are not speech; keep this much around it.
FRAME = RATE // 50
QUIET_DBFS = -50.0
BELOW_PEAK_DB = 40.0
KEEP_SECS = 0.5


def trim_quiet(audio: np.ndarray) -> np.ndarray:
    """`audio` (float32 at 16 kHz) without its leading and trailing quiet, less a margin."""
    frames = audio.size // FRAME
    if frames == 0:
        return audio
    power = np.mean(np.square(audio[: frames * FRAME].reshape(frames, FRAME)), axis=1)
    floor = max(10 ** (QUIET_DBFS / 10), float(power.max()) * 10 ** (-BELOW_PEAK_DB / 10))
    loud = np.flatnonzero(power > floor)
    if loud.size == 0:
        return audio
    keep = round(KEEP_SECS * RATE)
    start = max(0, int(loud[0]) * FRAME - keep)
    end = min(audio.size, (int(loud[-1]) + 1) * FRAME + keep)
    return audio[start:end]


def window_frames(samples: int, hop: int) -> int:
    """Mel frames of the encoder's window for `samples` of speech (hop: samples a frame)."""
    secs = samples / RATE + MARGIN_SECS
    window = max(MIN_WINDOW_SECS, WINDOW_STEP_SECS * math.ceil(secs / WINDOW_STEP_SECS))
    return min(window, FULL_WINDOW_SECS) * RATE // hop


def transcribe_utterance(model: WhisperModel, audio: np.ndarray, language: str = "en") -> str:
    """What was said in `audio` (float32, 16 kHz, one utterance): its text, or "" for none.

    Runs the model: call it off the event loop.
    """
    audio = trim_quiet(audio)
    if audio.size / RATE + MARGIN_SECS > FULL_WINDOW_SECS:
        return _transcribe_full(model, audio, language)
    extractor = model.feature_extractor
    features = extractor(audio)
    window = window_frames(audio.size, extractor.hop_length)
    encoded = model.encode(pad_or_trim(features, window))
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
    )
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    max_new = round(16 + TOKENS_PER_SEC * audio.size / RATE)
    [result] = model.model.generate(
        encoded,
        [prompt],
        beam_size=BEAM_SIZE if audio.size / RATE <= BEAM_MAX_SECS else 1,
        max_length=len(prompt) + max_new,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
    )
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    text = tokenizer.decode(tokens).strip()
    average_log_prob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and average_log_prob < LOG_PROB_THRESHOLD
    if silent or not any(c.isalnum() for c in text):  # "." is what tiny.en hears in silence
        return ""
    if text and _compression_ratio(text) > MAX_COMPRESSION_RATIO:
        return _transcribe_full(model, audio, language)
    return text


def _transcribe_full(model: WhisperModel, audio: np.ndarray, language: str) -> str:
    segments, _ = model.transcribe(
        audio,
        language=language,
        beam_size=1,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segments if s.no_speech_prob < NO_SPEECH_THRESHOLD)


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data))
