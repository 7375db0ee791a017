"""Loudness as ITU-R BS.1770 measures it, cheaply enough to run on every VAD window."""

from __future__ import annotations

import functools
import math

import numpy as np

K_WEIGHTING_TAPS = 32


@functools.cache
def k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's K-weighting pre-filter at `sample_rate`, as a short FIR.

    The high shelf (+4 dB above ~1.7 kHz) of the standard, with libebur128's
    coefficients for any rate; its impulse response has decayed by
    `K_WEIGHTING_TAPS`. The standard's second stage, a 38 Hz high-pass, is left
    out: telephone audio has nothing that low.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    b = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0)
    a = (2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    taps = np.zeros(K_WEIGHTING_TAPS)
    x1 = x2 = y1 = y2 = 0.0
    for n in range(K_WEIGHTING_TAPS):
        x0 = 1.0 if n == 0 else 0.0
        y0 = b[0] * x0 + b[1] * x1 + b[2] * x2 - a[0] * y1 - a[1] * y2
        taps[n], x2, x1, y2, y1 = y0, x1, x0, y1, y0
    return taps[::-1].astype(np.float32)  # np.convolve flips it back
