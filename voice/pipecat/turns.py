"""When the caller's turn is over: Pipecat's speech timeout, without cutting the caller short.

Pipecat's `SpeechTimeoutUserTurnStopStrategy` ends the turn once a pause window
has passed since VAD said the caller stopped, provided some transcript came.
Two things let it end a turn in the middle of a sentence:

- VAD says the caller speaks again only after `start_secs` (0.2 s) of speech,
  so a caller who takes a breath and goes on near the end of the window loses
  the turn;
- with a segmented STT (Whisper transcribes each stretch of speech between VAD
  stops), the first stretch's words count as "some transcript" while the
  second's are still being transcribed, and the turn ends without them;
- the window is timed by the clock, so audio that arrives late (the network
  held it, or the process was busy) counts as a pause the caller never made.

Each way the bot starts answering half of what was said and is cut off when
the rest arrives. `PatientSpeechTimeout` also waits while VAD hears speech
starting, while a segmented STT still owes the words of a stretch
(`SegmentTranscribedFrame`), and until VAD has heard the pause window's worth
of the caller's audio.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from pipecat.frames.frames import DataFrame, Frame, VADUserStoppedSpeakingFrame
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)

from voice.pipecat.vad import FastSileroVAD

# How often to look again while VAD makes up its mind: one Silero window at 8 kHz.
RECHECK_SECS = 0.032
# Never hold a turn longer than this past its pause window (a stuck STT, say).
MAX_HOLD_SECS = 3.0
# Audio the window may be short of when its clock runs out, without a hold: VAD
# hears in 32 ms windows and audio comes in 20 ms frames, so on time is never exact.
LATE_SLACK_SECS = 0.064


@dataclass
class SegmentTranscribedFrame(DataFrame):
    """A segmented STT has pushed all it heard up to the caller's `segment`-th VAD stop.

    It follows the segment's transcript down the pipeline, so whoever sees it
    has seen the words. Not dropped by an interruption: the count must go on.
    """

    segment: int = 0
    interruptible: bool = field(default=False, init=False)


class PatientSpeechTimeout(SpeechTimeoutUserTurnStopStrategy):
    """Pipecat's speech-timeout stop, held while the caller may be going on."""

    def __init__(
        self, vad: FastSileroVAD, *, user_speech_timeout: float, segmented_stt: bool = False
    ) -> None:
        """End turns `user_speech_timeout` after VAD's stop, once nothing is pending.

        Args:
            vad: The call's VAD, which tells whether it hears speech starting.
            user_speech_timeout: The pause window after VAD's stop.
            segmented_stt: Whether the STT marks each transcribed stretch with a
                `SegmentTranscribedFrame` (the offline Whisper does).
        """
        super().__init__(user_speech_timeout=user_speech_timeout)
        self._vad = vad
        self._pause_window = user_speech_timeout
        self._segmented_stt = segmented_stt
        self._stops = 0
        self._transcribed = 0
        self._changed = asyncio.Event()
        self._hold: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Count VAD stops and transcribed stretches, then decide as Pipecat does."""
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self._stops += 1
        elif isinstance(frame, SegmentTranscribedFrame):
            self._transcribed = max(self._transcribed, frame.segment)
            self._changed.set()
        return await super().process_frame(frame)

    def caller_done(self) -> bool:
        """Whether the caller is not speaking and all they said has been transcribed."""
        return not self._vad_user_speaking and not self._pending()

    async def wait_caller_done(self, within: float) -> bool:
        """Wait (at most `within` seconds) until `caller_done`; whether it came true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.caller_done():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(RECHECK_SECS)
        return True

    def _pending(self) -> bool:
        starting = self._vad.hears_speech and not self._vad_user_speaking
        owed = self._segmented_stt and self._transcribed < self._stops
        return starting or owed

    def _late(self) -> bool:
        """Whether VAD has heard less of the caller's pause than the window's worth."""
        return self._vad.heard_since_stop < self._pause_window - LATE_SLACK_SECS

    async def _maybe_trigger_user_turn_stopped(self) -> None:
        if self._pending() or self._late():
            if self._hold is None:
                self._hold = self.task_manager.create_task(
                    self._trigger_when_settled(), f"{self}::_trigger_when_settled"
                )
            return
        await super()._maybe_trigger_user_turn_stopped()

    async def _trigger_when_settled(self) -> None:
        """Look again until nothing is pending; VAD confirming speech cancels this."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_HOLD_SECS
        try:
            while (self._pending() or self._late()) and loop.time() < deadline:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), RECHECK_SECS)
        except asyncio.CancelledError:
            return
        finally:
            self._hold = None
        await super()._maybe_trigger_user_turn_stopped()

    async def _cancel_all_tasks(self) -> None:
        await super()._cancel_all_tasks()
        if self._hold is not None:
            await self.task_manager.cancel_task(self._hold)
            self._hold = None
