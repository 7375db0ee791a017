"""Silero VAD for many calls in one process: inline, with a cheap level check.

Pipecat's `SileroVADAnalyzer` costs more than the model itself. Per 20 ms of
audio it hops to a thread of the call's own executor and back, and per 32 ms
window it measures ITU-R BS.1770 loudness over the last 400 ms. This analyzer
keeps Pipecat's state machine and decisions (confidence ≥ `confidence` and
volume ≥ `min_volume`, `start_secs`, `stop_secs`) but:

- runs on the event loop: one Silero window is about 0.1 ms, much less than
  the hop to a thread and back;
- measures volume as the RMS level of the same 400 ms window, which agrees
  with BS.1770 on speech to about 0.01 of the 0–1 volume scale (the
  K-weighting that separates them matters little at telephony bandwidth);
- skips the model on windows too quiet to be speech (below `QUIET_DBFS`) while
  the caller is quiet, which is most of a call (the caller listens while the
  bot talks): they score 0, and the model's recurrent state is reset after a
  run of them, as Pipecat resets it in clear non-speech. Once speech starts,
  every window is scored, so pauses inside speech and its end are judged
  exactly as Pipecat judges them.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import onnxruntime
from pipecat.audio.utils import normalize_value
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

# A window quieter than this is not speech: the model is not asked.
QUIET_DBFS = -60.0
# After this many quiet windows in a row the model starts afresh, as after silence.
QUIET_WINDOWS_BEFORE_RESET = 5
# Pipecat's own reset in non-speech the model did score (noise, music): due every
# 2 s of audio, done once the caller is quiet and 5 windows in a row scored < 0.1.
RESET_INTERVAL_SECS = 2.0
RESET_MAX_CONFIDENCE = 0.1
RESET_LOW_CONFIDENCE_WINDOWS = 5
# Pipecat's volume: BS.1770 loudness over 400 ms, -110..-10 LUFS mapped to 0..1,
# nothing below the -70 LUFS absolute gate.
VOLUME_WINDOW_SECS = 0.4
LOUDNESS_FLOOR, LOUDNESS_CEILING, ABSOLUTE_GATE = -110.0, -10.0, -70.0
_FULL_SCALE_SQUARED = 32768.0**2
_RATES = {8000: (256, 32), 16000: (512, 64)}  # window samples, context samples


class FastSileroVAD(VADAnalyzer):
    """Silero VAD for one call, on a shared ONNX session, run inline on the event loop."""

    def __init__(self, session: onnxruntime.InferenceSession, *, params: VADParams) -> None:
        """Give one call its own model state on `session` (from `offline.load_silero`).

        Args:
            session: The process's Silero ONNX session.
            params: Confidence, volume and timing thresholds.
        """
        super().__init__(params=params)
        self._session = session
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, 32), dtype=np.float32)
        self._rate_input = np.array(8000, dtype=np.int64)
        self._quiet_windows = 0
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._quiet_mean_square = 0.0
        self._levels: deque[float] = deque()

    def set_sample_rate(self, sample_rate: int) -> None:
        """Set the call's rate: Silero knows 8 and 16 kHz only."""
        if sample_rate not in _RATES:
            raise ValueError(f"Silero VAD needs 8000 or 16000 Hz, not {sample_rate}")
        super().set_sample_rate(sample_rate)
        window, context = _RATES[sample_rate]
        self._rate_input = np.array(sample_rate, dtype=np.int64)
        self._levels = deque(maxlen=math.ceil(VOLUME_WINDOW_SECS * sample_rate / window))
        self._quiet_mean_square = _FULL_SCALE_SQUARED * 10 ** (QUIET_DBFS / 10)
        self._reset_model(context)

    def num_frames_required(self) -> int:
        """Samples per Silero window: 256 at 8 kHz, 512 at 16 kHz."""
        return _RATES.get(self.sample_rate, (256, 32))[0]

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Analyze a chunk of audio inline and return the VAD state after it."""
        return self._run_analyzer(buffer)

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's speech probability for one window; 0 for a window too quiet to ask."""
        samples = np.frombuffer(buffer, dtype=np.int16).astype(np.float32)
        mean_square = float(np.dot(samples, samples)) / max(samples.size, 1)
        self._levels.append(mean_square)
        if mean_square < self._quiet_mean_square and self._vad_state == VADState.QUIET:
            self._quiet_windows += 1
            if self._quiet_windows == QUIET_WINDOWS_BEFORE_RESET:
                self._reset_model(self._context.shape[1])
            return 0.0
        self._quiet_windows = 0
        x = np.concatenate((self._context, samples.reshape(1, -1) / 32768.0), axis=1)
        probability, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": self._rate_input}
        )
        self._context = x[:, -self._context.shape[1] :]
        confidence = float(probability[0][0])
        self._maybe_reset_model(confidence)
        return confidence

    def _maybe_reset_model(self, confidence: float) -> None:
        self._windows_since_reset += 1
        if confidence < RESET_MAX_CONFIDENCE:
            self._low_confidence_windows += 1
        else:
            self._low_confidence_windows = 0
        if (
            self._windows_since_reset * self.num_frames_required()
            >= RESET_INTERVAL_SECS * self.sample_rate
            and self._vad_state == VADState.QUIET
            and self._low_confidence_windows >= RESET_LOW_CONFIDENCE_WINDOWS
        ):
            self._reset_model(self._context.shape[1])

    def _get_smoothed_volume(self, audio: bytes) -> float:
        # The level was measured by voice_confidence, which runs first on each window.
        volume = 0.0
        if len(self._levels) == self._levels.maxlen:
            mean_square = sum(self._levels) / len(self._levels)
            if mean_square > 0:
                loudness = 10 * math.log10(mean_square / _FULL_SCALE_SQUARED) - 0.691
                if loudness >= ABSOLUTE_GATE:
                    volume = normalize_value(loudness, LOUDNESS_FLOOR, LOUDNESS_CEILING)
        return self._prev_volume + self._smoothing_factor * (volume - self._prev_volume)

    def _reset_model(self, context_samples: int) -> None:
        self._windows_since_reset = 0
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, context_samples), dtype=np.float32)
