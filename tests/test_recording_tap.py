"""The recording's clock, on a clock of the test's own: where each side's audio lands, what a
barge-in cuts, and that a WAV stays playable as it grows and after a crash."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recording.tap import StereoTap
from recording.wav import WavWriter, is_locked, repair

RATE = 8000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tone(seconds: float, level: int) -> bytes:
    return np.full(round(seconds * RATE), level, dtype="<i2").tobytes()


def channels(pcm: bytes) -> tuple[np.ndarray, np.ndarray]:
    stereo = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    return stereo[:, 0], stereo[:, 1]


def spans(channel: np.ndarray, level: int) -> list[tuple[float, float]]:
    """The stretches where `channel` holds `level`, in seconds."""
    on = np.concatenate([[False], channel == level, [False]])
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return [(a / RATE, b / RATE) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def run(events: Sequence[tuple[float, str, bytes | None]], end: float) -> bytes:
    """Feed (time, side, audio) to a tap, mixing every half second; the stereo result."""
    clock = Clock()
    start = clock.now
    tap = StereoTap(RATE, clock=clock)
    out = bytearray()
    next_mix = 0.5
    for at, side, pcm in sorted(events, key=lambda e: e[0]):
        while next_mix <= at:
            clock.now = start + next_mix
            out += tap.mix(tap.take())
            next_mix += 0.5
        clock.now = start + at
        if side == "caller":
            assert pcm is not None
            tap.caller(pcm)
        elif pcm is None:
            tap.interrupted()
        else:
            tap.bot(pcm)
    clock.now = start + end
    out += tap.mix(tap.take(), final=True)
    return bytes(out)


def test_each_side_lands_where_the_caller_heard_it_and_gaps_stay_gaps() -> None:
    caller = [(0.02 * (i + 1), "caller", tone(0.02, 1000)) for i in range(50)]  # 0-1 s
    caller += [(2.0 + 0.02 * (i + 1), "caller", tone(0.02, 1000)) for i in range(25)]  # 2-2.5 s
    # The bot's 0.5 s reply leaves in 100 ms chunks, ahead of playout: it plays back to back.
    bot = [(1.2 + 0.05 * i, "bot", tone(0.1, 2000)) for i in range(5)]
    left, right = channels(run(caller + bot, end=3.0))
    assert len(left) == 3 * RATE
    assert spans(left, 1000) == [(0.0, 1.0), (2.0, 2.5)]
    assert spans(right, 2000) == [(1.2, 1.7)]


def test_a_barge_in_drops_what_was_sent_but_not_yet_played() -> None:
    # Two seconds of bot audio sent at once at 1 s; the caller cuts in at 1.5 s.
    events = [(1.0, "bot", tone(2.0, 2000)), (1.5, "bot", None)]
    events += [(1.5 + 0.02 * (i + 1), "caller", tone(0.02, 1000)) for i in range(25)]
    events += [(2.5, "bot", tone(0.3, 3000))]  # the next reply plays when it is sent
    left, right = channels(run(events, end=4.0))
    assert spans(right, 2000) == [(1.0, 1.5)]
    assert spans(right, 3000) == [(2.5, 2.8)]
    assert spans(left, 1000) == [(1.5, 2.0)]


def test_bot_audio_not_yet_played_when_the_call_ends_was_never_heard() -> None:
    _, right = channels(run([(1.0, "bot", tone(5.0, 2000))], end=2.0))
    assert len(right) == 2 * RATE
    assert spans(right, 2000) == [(1.0, 2.0)]


def test_a_wav_is_playable_as_it_grows_and_is_repaired_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "CA1.wav"
    writer = WavWriter(path, RATE)
    assert is_locked(path)
    writer.write(b"\x01\x00\x02\x00" * RATE)  # one second of stereo
    with wave.open(str(path)) as wav:  # readable while still open for writing
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, RATE, RATE)
    # The process dies between a write and its header patch: half a frame too.
    with path.open("ab") as file:
        file.write(b"\x03\x00\x04\x00" * (RATE // 2) + b"\x05")
    writer._file.close()  # the lock goes with the process
    assert not is_locked(path)
    assert repair(path) == 1.5
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == RATE * 3 // 2
