"""A DTMF detector for the tests: which keys a stretch of PCM16 audio holds, in order.

    detect_keys(call.heard, 8000)   # e.g. "12#"

The Goertzel algorithm measures each of the eight DTMF frequencies in blocks of
205 samples at 8 kHz (the classic choice: ~39 Hz bins that keep 697 and 770 Hz
apart). A block holds a key when one row and one column frequency each carry
much of its energy and stand well above the others of their group; a key is
heard once it lasts two blocks (~50 ms), and again only after it changed or
stopped. Speech does not pass these checks.
"""

from __future__ import annotations

import math

import numpy as np

ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477, 1633)
LAYOUT = ("123A", "456B", "789C", "*0#D")
BLOCK_SECS = 205 / 8000
MIN_RMS = 300.0  # of PCM16: quieter blocks hold no key


def goertzel(block: np.ndarray, frequency: float, sample_rate: int) -> float:
    """The amplitude of `frequency` in `block`, by the Goertzel recurrence."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / sample_rate)
    previous = before = 0.0
    for sample in block.tolist():
        previous, before = sample + coefficient * previous - before, previous
    power = previous * previous + before * before - coefficient * previous * before
    return 2 * math.sqrt(max(power, 0.0)) / len(block)


def block_key(block: np.ndarray, sample_rate: int) -> str | None:
    """The key one block of audio holds, or None."""
    rms = float(np.sqrt(np.mean(block * block)))
    if rms < MIN_RMS:
        return None
    rows = [goertzel(block, f, sample_rate) for f in ROWS]
    columns = [goertzel(block, f, sample_rate) for f in COLUMNS]
    row, column = int(np.argmax(rows)), int(np.argmax(columns))
    for levels, best in ((rows, row), (columns, column)):
        others = [level for i, level in enumerate(levels) if i != best]
        # Two sines of amplitude a have an RMS of a: each must hold a good share of it.
        if levels[best] < 0.5 * rms or max(others) > 0.3 * levels[best]:
            return None
    return LAYOUT[row][column]


def detect_keys(audio: bytes, sample_rate: int) -> str:
    """The keys pressed in `audio` (mono PCM16 at `sample_rate`), in order."""
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float64)
    size = round(BLOCK_SECS * sample_rate)
    blocks = [
        block_key(samples[i : i + size], sample_rate)
        for i in range(0, len(samples) - size + 1, size)
    ]
    keys, run, last = [], 0, None
    for key in blocks:
        run = run + 1 if key == last else 1
        last = key
        if key is not None and run == 2:
            keys.append(key)
    return "".join(keys)
