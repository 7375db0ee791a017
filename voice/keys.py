"""Keys the bot presses: DTMF tones, synthesised as audio the other side hears.

    keys_audio("1w2#", 8000)   # PCM16: 1, half a second's wait, 2, #

A phone menu listens for in-band tones (ITU-T Q.23): two sines, one from the
row and one from the column of the key. Each key is a `TONE_SECS` tone and a
`GAP_SECS` silence, well past the 40 ms each that Q.24 asks receivers to take;
`w` waits half a second, as Twilio's `sendDigits` does.
"""

from __future__ import annotations

import re

import numpy as np

KEYS = re.compile(r"[0-9*#w]{1,32}")
ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477)
LAYOUT = ("123", "456", "789", "*0#")
FREQUENCIES: dict[str, tuple[int, int]] = {
    key: (ROWS[row], COLUMNS[column])
    for row, keys in enumerate(LAYOUT)
    for column, key in enumerate(keys)
}
TONE_SECS = 0.15
GAP_SECS = 0.1
WAIT_SECS = 0.5
# Each sine at about -9 dBFS: loud enough for any receiver, well clear of clipping in μ-law.
AMPLITUDE = 0.35 * 32767


def keys_audio(keys: str, sample_rate: int) -> bytes:
    """The tones of `keys` (digits, `*`, `#`, and `w` for a half-second wait), as PCM16.

    Raises:
        ValueError: A character that is not a key, or more than 32 of them.
    """
    if not KEYS.fullmatch(keys):
        raise ValueError(f"{keys[:40]!r}: keys are 0-9, * and #, and w to wait (at most 32)")
    gap = np.zeros(round(GAP_SECS * sample_rate))
    parts = []
    for key in keys:
        if key == "w":
            parts.append(np.zeros(round(WAIT_SECS * sample_rate)))
            continue
        t = np.arange(round(TONE_SECS * sample_rate)) / sample_rate
        low, high = FREQUENCIES[key]
        tone = AMPLITUDE * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # no clicks at the edges
        parts += [tone * ramp, gap]
    return np.concatenate(parts).astype("<i2").tobytes()
