"""Silero VAD for many calls in one process: batched, inline, with a cheap level check.

Pipecat's `SileroVADAnalyzer` costs more than the model itself. Per 20 ms of
audio it hops to a thread of the call's own executor and back, per 32 ms window
it measures ITU-R BS.1770 loudness over the last 400 ms, and every window is
one ONNX run, whose fixed cost dwarfs Silero's own arithmetic. This analyzer
keeps Pipecat's state machine and decisions (confidence ≥ `confidence` and
volume ≥ `min_volume`, `start_secs`, `stop_secs`) but:

- scores on the event loop, the windows of all the process's calls that arrive
  within 10 ms of each other in one ONNX run (`SileroBatcher`): at 30 calls a
  window then costs 0.14 ms instead of 0.31 ms. Windows that count towards a
  stop are not held back: a reply is waiting on them;
- measures volume as BS.1770 does, over the same 400 ms, from a running
  K-weighted power per window (a 32-tap filter, no gating beyond the absolute
  gate, which a single 400 ms block never needs): within 0.01 of Pipecat's
  0–1 volume, for a tenth of its cost;
- takes a window too quiet to be speech (below `QUIET_DBFS`, -65 dBFS) for non-speech.
  While the caller is quiet, which is most of a call (the caller listens while
  the bot talks), the model is not even asked, and after a run of such windows
  its recurrent state is set to what it would be after a spell of silence, as
  Pipecat's resets it in clear non-speech and then scores the silence. While
  the caller speaks, the model still scores every window (its state follows
  the speech), but a quiet one counts as non-speech: Silero's probability
  lingers for a window or three after speech ends, and the stop is counted
  from the end of the speech instead. Starting is judged by the model alone.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import onnxruntime
from pipecat.audio.utils import normalize_value
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from voice.loudness import K_WEIGHTING_TAPS, k_weighting
from voice.silero import RATES, SileroBatcher, silence_state

# A window quieter than this is not speech: the model is not asked.
QUIET_DBFS = -65.0
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
# The caller counts as settled into quiet (see `caller_quiet`) after this long:
# past the turn's pause window (0.4 s), so a caller who goes on is heard at once.
SETTLED_QUIET_SECS = 0.5
# The model heard speech within this many windows: the caller may be starting to speak.
SPEECH_HEARD_WINDOWS = 4
_FULL_SCALE_SQUARED = 32768.0**2


class FastSileroVAD(VADAnalyzer):
    """Silero VAD for one call, on the process's shared ONNX session."""

    def __init__(self, session: onnxruntime.InferenceSession, *, params: VADParams) -> None:
        """Give one call its own model state on `session` (from `offline.load_silero`).

        Args:
            session: The process's Silero ONNX session.
            params: Confidence, volume and timing thresholds.
        """
        super().__init__(params=params)
        self._session = session
        self._state = silence_state(session, 8000).copy()
        self._context = np.zeros((1, 32), dtype=np.float32)
        self._quiet_windows = 0
        self._windows_in_quiet = 0
        self._windows_since_stop: float = math.inf  # no stop yet: nothing to wait for
        self._settled_windows = 0  # windows in SETTLED_QUIET_SECS, once the rate is known
        self._window_is_quiet = False
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._speech_windows_ago = SPEECH_HEARD_WINDOWS  # since the model last heard speech
        self._quiet_mean_square = _FULL_SCALE_SQUARED * 10 ** (QUIET_DBFS / 10)
        self._levels: deque[float] = deque()
        self._k_history = np.zeros(K_WEIGHTING_TAPS - 1, dtype=np.float32)

    def set_sample_rate(self, sample_rate: int) -> None:
        """Set the call's rate: Silero knows 8 and 16 kHz only."""
        if sample_rate not in RATES:
            raise ValueError(f"Silero VAD needs 8000 or 16000 Hz, not {sample_rate}")
        super().set_sample_rate(sample_rate)
        window, _ = RATES[sample_rate]
        self._levels = deque(maxlen=math.ceil(VOLUME_WINDOW_SECS * sample_rate / window))
        self._settled_windows = math.ceil(SETTLED_QUIET_SECS * sample_rate / window)
        self._reset_model()

    @property
    def caller_quiet(self) -> bool:
        """Whether the caller has been quiet, not even starting to speak, for a while.

        For `SETTLED_QUIET_SECS` after they stop they may still be pausing
        within their turn, and are not yet quiet in this sense.
        """
        return self._vad_state == VADState.QUIET and self._windows_in_quiet >= self._settled_windows

    @property
    def heard_since_stop(self) -> float:
        """Seconds of the caller's audio analysed since VAD last said they stopped.

        Audio time, not the clock's: audio that came late (a stalled network or
        a busy process) has not yet been heard, whatever the clock says.
        """
        return self._windows_since_stop * self.num_frames_required() / self.sample_rate

    @property
    def hears_speech(self) -> bool:
        """Whether the caller is speaking, or may be starting to and it is not yet confirmed.

        The model hearing speech in the last few windows counts before the volume
        does: Pipecat's volume is smoothed over 400 ms, and after a pause it
        takes a tenth of a second or more to rise past `min_volume`.
        """
        starting = self._speech_windows_ago < SPEECH_HEARD_WINDOWS
        return self._vad_state in (VADState.STARTING, VADState.SPEAKING) or starting

    @property
    def counting_stop(self) -> bool:
        """Whether the caller went quiet and the stop is being counted: a reply waits on VAD."""
        return self._vad_state == VADState.STOPPING

    def num_frames_required(self) -> int:
        """Samples per Silero window: 256 at 8 kHz, 512 at 16 kHz."""
        return RATES.get(self.sample_rate, (256, 32))[0]

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Analyze a chunk of audio and return the VAD state after it.

        Pipecat's `_run_analyzer`, with each window scored by the shared batcher.
        """
        self._vad_buffer += buffer
        size = self._vad_frames_num_bytes
        while len(self._vad_buffer) >= size:
            window, self._vad_buffer = self._vad_buffer[:size], self._vad_buffer[size:]
            audio = self._prepare(window)
            confidence = 0.0
            self._speech_windows_ago += 1
            if audio is not None:
                # While a stop is being counted, a reply waits on every window.
                scoring = SileroBatcher.shared(self._session).score(
                    audio,
                    self._state,
                    self.sample_rate,
                    urgent=self._vad_state == VADState.STOPPING,
                )
                probability, self._state = await scoring
                if probability >= self._params.confidence:
                    self._speech_windows_ago = 0
                confidence = self._scored(audio, probability)
            self._prev_volume = self._get_smoothed_volume(window)
            self._step(
                confidence >= self._params.confidence
                and self._prev_volume >= self._params.min_volume
            )
            quiet = self._vad_state == VADState.QUIET
            self._windows_in_quiet = self._windows_in_quiet + 1 if quiet else 0
            self._windows_since_stop += 1
        self._settle()
        return self._vad_state

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's speech probability for one window, scored on its own (not batched)."""
        audio = self._prepare(buffer)
        if audio is None:
            return 0.0
        probability, self._state = self._session.run(
            None,
            {"input": audio, "state": self._state, "sr": np.array(self.sample_rate, np.int64)},
        )
        return self._scored(audio, float(probability[0][0]))

    def _prepare(self, window: bytes) -> np.ndarray | None:
        """Measure a window's level; the model's input for it, or None if too quiet to ask."""
        samples = np.frombuffer(window, dtype=np.int16).astype(np.float32)
        mean_square = float(np.dot(samples, samples)) / max(samples.size, 1)
        self._window_is_quiet = mean_square < self._quiet_mean_square
        if self._window_is_quiet:  # far below the loudness gate: weighting changes nothing
            self._levels.append(mean_square)
            self._k_history[:] = 0.0
        else:
            taps = k_weighting(self.sample_rate)
            weighted = np.convolve(np.concatenate((self._k_history, samples)), taps, "valid")
            self._k_history = samples[1 - taps.size :]
            self._levels.append(float(np.dot(weighted, weighted)) / weighted.size)
        if self._window_is_quiet and self._vad_state == VADState.QUIET:
            self._quiet_windows += 1
            if self._quiet_windows == QUIET_WINDOWS_BEFORE_RESET:
                self._reset_model()
            return None
        self._quiet_windows = 0
        return np.concatenate((self._context, samples.reshape(1, -1) / 32768.0), axis=1)

    def _scored(self, audio: np.ndarray, probability: float) -> float:
        """Keep the model's context; the window's confidence, 0 for a quiet one in speech.

        Silero's probability lingers for a window or three after speech ends; a
        window that quiet is not speech, so the stop is counted from it at once.
        """
        self._context = audio[:, -self._context.shape[1] :]
        confidence = probability
        if self._window_is_quiet and self._vad_state in (VADState.SPEAKING, VADState.STOPPING):
            confidence = 0.0
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
            self._reset_model()
        return confidence

    def _step(self, speaking: bool) -> None:
        """Pipecat's per-window state transition."""
        state = self._vad_state
        if speaking:
            if state == VADState.QUIET:
                self._vad_state, self._vad_starting_count = VADState.STARTING, 1
            elif state == VADState.STARTING:
                self._vad_starting_count += 1
            elif state == VADState.STOPPING:
                self._vad_state, self._vad_stopping_count = VADState.SPEAKING, 0
        elif state == VADState.STARTING:
            self._vad_state, self._vad_starting_count = VADState.QUIET, 0
        elif state == VADState.SPEAKING:
            self._vad_state, self._vad_stopping_count = VADState.STOPPING, 1
        elif state == VADState.STOPPING:
            self._vad_stopping_count += 1

    def _settle(self) -> None:
        """Pipecat's end-of-chunk check: enough windows to call a start or a stop."""
        if (
            self._vad_state == VADState.STARTING
            and self._vad_starting_count >= self._vad_start_frames
        ):
            self._vad_state, self._vad_starting_count = VADState.SPEAKING, 0
        if (
            self._vad_state == VADState.STOPPING
            and self._vad_stopping_count >= self._vad_stop_frames
        ):
            self._vad_state, self._vad_stopping_count = VADState.QUIET, 0
            self._windows_since_stop = 0

    def _get_smoothed_volume(self, audio: bytes) -> float:
        # `_prepare` measured the window's level; this smooths the 400 ms mean as Pipecat does.
        volume = 0.0
        if len(self._levels) == self._levels.maxlen:
            mean_square = sum(self._levels) / len(self._levels)
            if mean_square > 0:
                loudness = 10 * math.log10(mean_square / _FULL_SCALE_SQUARED) - 0.691
                if loudness >= ABSOLUTE_GATE:
                    volume = normalize_value(loudness, LOUDNESS_FLOOR, LOUDNESS_CEILING)
        return self._prev_volume + self._smoothing_factor * (volume - self._prev_volume)

    def _reset_model(self) -> None:
        _, context = RATES.get(self.sample_rate, (256, 32))
        self._windows_since_reset = 0
        self._state = silence_state(self._session, self.sample_rate or 8000).copy()
        self._context = np.zeros((1, context), dtype=np.float32)
