"""The offline voice's own decoding: Whisper in a window fitted to the speech, Piper's openings."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from simulator import synthesize
from voice import VoiceStack
from voice.pipecat.offline import opening_phrase
from voice.whisper import MIN_WINDOW_SECS, RATE, transcribe_utterance, trim_quiet, window_frames

HOP = 160  # Whisper's mel frames: 10 ms each


def as_caller(text: str, before: float = 1.0, after: float = 0.7) -> np.ndarray:
    """`text` spoken on a phone line, with quiet around it as a VAD segment has, at 16 kHz.

    A take of its own, past `synthesize`'s cache: Piper's speech varies from one
    synthesis to the next, and a rerun must hear a new take, not the one misheard.
    """
    pcm = synthesize.__wrapped__(text)
    speech = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    rng = np.random.default_rng(7)
    line = np.concatenate([np.zeros(int(before * 8000)), speech, np.zeros(int(after * 8000))])
    line = line + rng.normal(0.0, 0.001, line.size)  # a line is never digitally silent
    return soxr.resample(line.astype(np.float32), 8000, RATE).astype(np.float32)


def plain(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").replace("?", " ").split())


@pytest.mark.speech
@pytest.mark.parametrize(
    "said",
    [
        "What time do you open tomorrow?",
        "Goodbye.",
        "Yes.",
        "I would like to book a table for four people at seven tonight, please.",
        "Can you transfer me to a human?",
    ],
)
def test_an_utterance_is_transcribed_word_for_word(voice_stack: VoiceStack, said: str) -> None:
    assert plain(transcribe_utterance(voice_stack.whisper, as_caller(said))) == plain(said)


@pytest.mark.parametrize("loudness", [0.0, 0.002, 0.05])
def test_a_line_without_speech_gives_no_words(voice_stack: VoiceStack, loudness: float) -> None:
    noise = np.random.default_rng(3).normal(0.0, loudness, 2 * RATE).astype(np.float32)
    assert transcribe_utterance(voice_stack.whisper, noise) == ""


def test_the_window_fits_the_speech_but_never_below_ten_seconds() -> None:
    assert window_frames(2 * RATE, HOP) == MIN_WINDOW_SECS * RATE // HOP
    assert window_frames(9 * RATE, HOP) == 15 * RATE // HOP
    assert window_frames(40 * RATE, HOP) == 30 * RATE // HOP


def test_quiet_is_trimmed_around_the_speech_with_a_margin() -> None:
    audio = as_caller("Hello there.", before=2.0, after=2.0)
    trimmed = trim_quiet(audio)
    speech_secs = len(synthesize("Hello there.")) / 2 / 8000
    assert speech_secs < trimmed.size / RATE < speech_secs + 1.2
    quiet = np.zeros(RATE, dtype=np.float32)
    assert trim_quiet(quiet).size == quiet.size  # nothing loud: nothing to go by


@pytest.mark.parametrize(
    ("sentence", "parts"),
    [
        (
            "I heard: what time do you open tomorrow?",
            ["I heard:", "what time do you open tomorrow?"],
        ),
        ("I heard: yes.", ["I heard: yes."]),  # too little after it to be worth a split
        ("Sure, we open at nine.", ["Sure, we open at nine."]),  # one word is no phrase
        ("You pressed seven and nine.", ["You pressed seven and nine."]),
    ],
)
def test_a_sentence_is_spoken_opening_phrase_first(sentence: str, parts: list[str]) -> None:
    assert opening_phrase(sentence) == parts
