"""The stages of each reply, timed from the caller's end of speech.

A reply is the bot's answer to one turn of the caller. Its stages, each as the
seconds from the caller's end of speech (VAD's stop, less the `stop_secs` of
silence VAD waited out, as Pipecat's `UserBotLatencyObserver` counts it):

    vad_stop         the user aggregator pushes VAD's stop (`VADUserStoppedSpeakingFrame`)
    stt_final        the STT pushes the turn's last transcript (0 if it came before the end)
    turn_end         the turn strategy ends the turn (`UserStoppedSpeakingFrame`, or
                     the context going to the LLM, whichever is first)
    llm_first_token  the LLM pushes the reply's first text (`LLMTextFrame`)
    tts_first_audio  the TTS pushes the reply's first audio (`TTSAudioRawFrame`)
    first_packet     the output transport starts sending it (`BotStartedSpeakingFrame`,
                     pushed right before it writes the first packet to the socket)

`first_packet` is the reply latency. A stage that did not happen (no text from
an LLM that only called a tool, say) is left out. A turn the caller takes back
(they speak again before the reply starts) has no reply.

Times are the pipeline's own: when the frame was pushed, as the worker's
observer records it, not when this observer gets to it (observers run in
tasks of their own, behind the pipeline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    LLMContextFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection


class Stage(StrEnum):
    """A moment in a reply, in the order they usually come (see the module's docstring)."""

    VAD_STOP = "vad_stop"
    STT_FINAL = "stt_final"
    TURN_END = "turn_end"
    LLM_FIRST_TOKEN = "llm_first_token"
    TTS_FIRST_AUDIO = "tts_first_audio"
    FIRST_PACKET = "first_packet"


@dataclass(frozen=True)
class Reply:
    """One reply's stages.

    Attributes:
        number: The reply's number in its call, from 1.
        speech_ended_ns: The caller's end of speech, Unix time in nanoseconds.
        stages: Seconds from the caller's end of speech to each stage that happened.
    """

    number: int
    speech_ended_ns: int
    stages: Mapping[Stage, float]

    @property
    def latency(self) -> float:
        """Seconds from the caller's end of speech to the reply's first packet."""
        return self.stages[Stage.FIRST_PACKET]

    def at_ns(self, stage: Stage) -> int:
        """When `stage` happened, Unix time in nanoseconds."""
        return self.speech_ended_ns + round(self.stages[stage] * 1e9)


# The frames a reply's stages are read from; everything else the observer is shown passes.
_WATCHED: tuple[type[Frame], ...] = (
    TTSAudioRawFrame,
    LLMTextFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    UserStoppedSpeakingFrame,
    LLMContextFrame,
    BotStartedSpeakingFrame,
)


class ReplyStages(BaseObserver):
    """Times each reply of one call's pipeline; tells `report` each one that started.

    Per frame it is shown: a dictionary look-up by the frame's type (the kind
    of frame worked out once per type) and a few comparisons. No audio reaches
    it but the TTS's (`AudioBlindObserver`), and it replaces Pipecat's
    `UserBotLatencyObserver`, which the reply latency metric used to take.
    """

    def __init__(self, report: Callable[[Reply], None]) -> None:
        """Report each reply to `report`, in the observer's task, as it starts playing."""
        super().__init__(observe_every_push=False)
        self._report = report
        self._kinds: dict[type[Frame], type[Frame] | None] = {}
        self._to_unix_ns: int | None = None  # Unix ns minus the pipeline clock's ns
        self._speech_ended: int | None = None  # Unix ns, of the turn being replied to
        self._marks: dict[Stage, int] = {}
        self._last_transcript: int | None = None
        self._replies = 0

    async def on_push_frame(self, data: FramePushed) -> None:
        """Note the stage a frame marks, if it marks one."""
        cls = type(data.frame)
        try:
            kind = self._kinds[cls]
        except KeyError:
            kind = self._kinds[cls] = next((k for k in _WATCHED if issubclass(cls, k)), None)
        if kind is None or data.direction is not FrameDirection.DOWNSTREAM:
            return
        if kind is TTSAudioRawFrame:  # the most frequent: every chunk of the bot's speech
            if Stage.TTS_FIRST_AUDIO not in self._marks and Stage.TURN_END in self._marks:
                self._marks[Stage.TTS_FIRST_AUDIO] = self._unix_ns(data)
        elif kind is LLMTextFrame:
            if Stage.LLM_FIRST_TOKEN not in self._marks and Stage.TURN_END in self._marks:
                self._marks[Stage.LLM_FIRST_TOKEN] = self._unix_ns(data)
        elif kind is TranscriptionFrame:
            self._last_transcript = self._unix_ns(data)
        elif kind is VADUserStartedSpeakingFrame:
            # The caller goes on (or takes the turn back): no reply yet to time.
            self._speech_ended = None
            self._marks.clear()
        elif kind is VADUserStoppedSpeakingFrame:
            self._stopped(data)
        elif kind is UserStoppedSpeakingFrame or kind is LLMContextFrame:
            self._turn_ended(data)
        elif kind is BotStartedSpeakingFrame:
            self._started_speaking(data)

    def _unix_ns(self, data: FramePushed) -> int:
        if self._to_unix_ns is None:
            # Both clocks read at one instant: the pipeline's is monotonic from its start.
            self._to_unix_ns = time.time_ns() - data.source.get_clock().get_time()
        return data.timestamp + self._to_unix_ns

    def _stopped(self, data: FramePushed) -> None:
        frame = data.frame
        assert isinstance(frame, VADUserStoppedSpeakingFrame)
        self._speech_ended = round((frame.timestamp - frame.stop_secs) * 1e9)
        self._marks = {Stage.VAD_STOP: self._unix_ns(data)}

    def _turn_ended(self, data: FramePushed) -> None:
        transcript, self._last_transcript = self._last_transcript, None
        if self._speech_ended is None or Stage.TURN_END in self._marks:
            return
        self._marks[Stage.TURN_END] = self._unix_ns(data)
        if transcript is not None:
            self._marks[Stage.STT_FINAL] = max(transcript, self._speech_ended)

    def _started_speaking(self, data: FramePushed) -> None:
        ended = self._speech_ended
        if ended is None or Stage.TURN_END not in self._marks:
            return  # the greeting, or speech that answers no turn (`POST /calls/{sid}/say`)
        self._marks[Stage.FIRST_PACKET] = self._unix_ns(data)
        self._replies += 1
        stages = {
            stage: max(0.0, (self._marks[stage] - ended) / 1e9)
            for stage in Stage
            if stage in self._marks
        }
        self._speech_ended = None
        self._marks = {}
        try:
            self._report(Reply(self._replies, ended, stages))
        except Exception:  # the observer's task must go on, or its queue grows for ever
            logger.exception("Could not report a reply's stages")
