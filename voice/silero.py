"""Silero VAD's ONNX model shared by every call of a process: its states, and batched runs.

One ONNX run has a fixed cost that dwarfs Silero's own arithmetic, so the
windows of all the process's calls that arrive within 10 ms of each other are
scored in one run (`SileroBatcher`). Windows that count towards a stop are not
held back: a reply is waiting on them.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import NamedTuple

import numpy as np
import onnxruntime
from loguru import logger

# A window waits at most this long for others to share its ONNX run: well under
# the 20 ms between packets, and at 30 calls it makes batches of about 6 windows,
# each scored for under half the cost of a run of its own.
BATCH_WAIT_SECS = 0.01
MAX_BATCH = 64
PRIMING_WINDOWS = 16
STATE_SHAPE = (2, 1, 128)
RATES = {8000: (256, 32), 16000: (512, 64)}  # window samples, context samples
# Each session's state after silence, by rate (see `silence_state`).
_SILENCE_STATES: weakref.WeakKeyDictionary[onnxruntime.InferenceSession, dict[int, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def silence_state(session: onnxruntime.InferenceSession, sample_rate: int) -> np.ndarray:
    """Silero's recurrent state after `PRIMING_WINDOWS` of silence from a reset.

    That is the state Pipecat's analyzer meets speech with after a quiet spell
    (it resets in silence, then goes on scoring the silence). A bare reset meets
    it unprepared, and misses a short word ("Yes.") that follows.
    """
    states = _SILENCE_STATES.setdefault(session, {})
    state = states.get(sample_rate)
    if state is None:
        window, context = RATES[sample_rate]
        state = np.zeros(STATE_SHAPE, dtype=np.float32)
        silence = np.zeros((1, context + window), dtype=np.float32)
        rate = np.array(sample_rate, dtype=np.int64)
        for _ in range(PRIMING_WINDOWS):
            _, state = session.run(None, {"input": silence, "state": state, "sr": rate})
        state = states[sample_rate] = np.asarray(state, dtype=np.float32)
    return state


class _Window(NamedTuple):
    audio: np.ndarray  # (1, context + window) float32
    state: np.ndarray  # (2, 1, 128) float32
    scored: asyncio.Future[tuple[float, np.ndarray]]


class SileroBatcher:
    """Scores the Silero windows of every call on one event loop, together.

    The first window queued starts a short wait (`BATCH_WAIT_SECS`); every window
    queued until it ends shares one ONNX run with it.
    """

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        """Batch windows for `session` on the running event loop."""
        self._session = session
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, list[_Window]] = {}
        self._flush: asyncio.Handle | None = None
        self._urgent = False

    @classmethod
    def shared(cls, session: onnxruntime.InferenceSession) -> SileroBatcher:
        """The running loop's batcher for `session`."""
        batchers = _BATCHERS.setdefault(asyncio.get_running_loop(), {})
        batcher = batchers.get(id(session))
        if batcher is None or batcher._session is not session:
            batcher = batchers[id(session)] = cls(session)
        return batcher

    def score(
        self, audio: np.ndarray, state: np.ndarray, sample_rate: int, *, urgent: bool = False
    ) -> asyncio.Future[tuple[float, np.ndarray]]:
        """Queue one window (with its context) and its call's state for the next run.

        Args:
            audio: The window, after its context: shape (1, context + window).
            state: The call's recurrent state.
            sample_rate: The call's rate.
            urgent: Run at the next loop iteration, with whatever is queued by then
                (a reply waits on this window).

        Returns:
            A future of the speech probability and the call's next state.
        """
        scored = self._loop.create_future()
        waiting = self._pending.setdefault(sample_rate, [])
        waiting.append(_Window(audio, state, scored))
        if len(waiting) >= MAX_BATCH:
            self._pending[sample_rate] = []
            self._run(waiting, sample_rate)
        elif urgent and not self._urgent:
            if self._flush is not None:
                self._flush.cancel()
            self._urgent = True
            self._flush = self._loop.call_soon(self._run_pending)
        elif self._flush is None:
            self._flush = self._loop.call_later(BATCH_WAIT_SECS, self._run_pending)
        return scored

    def _run_pending(self) -> None:
        self._flush, self._urgent = None, False
        pending, self._pending = self._pending, {}
        for sample_rate, windows in pending.items():
            for start in range(0, len(windows), MAX_BATCH):
                self._run(windows[start : start + MAX_BATCH], sample_rate)

    def _run(self, queued: list[_Window], sample_rate: int) -> None:
        # A call that hung up cancelled its window's future: it is owed nothing,
        # and setting its result would raise before the other calls hear theirs.
        windows = [w for w in queued if not w.scored.done()]
        if not windows:
            return
        try:
            probabilities, states = self._session.run(
                None,
                {
                    "input": np.concatenate([w.audio for w in windows]),
                    "state": np.concatenate([w.state for w in windows], axis=1),
                    "sr": np.array(sample_rate, dtype=np.int64),
                },
            )
        except Exception as e:  # a failed run must not stall every call's VAD
            logger.error(f"Silero VAD failed on a batch of {len(windows)}: {e!r}")
            for w in windows:
                w.scored.set_result((0.0, w.state))
            return
        for row, w in enumerate(windows):
            w.scored.set_result((float(probabilities[row][0]), states[:, row : row + 1, :].copy()))


# Each event loop's batchers, by the id of their session.
_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, SileroBatcher]] = (
    weakref.WeakKeyDictionary()
)
