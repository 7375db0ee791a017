"""The stage observer on the frame sequences real calls have but a test call rarely hits:
the greeting, a caller who pauses and goes on, a barge-in, a reply's tail after the turn;
and the benchmark's breakdown of the stage histogram between two scrapes.

The frames are Pipecat's own, pushed with the pipeline clock's times as the worker's
observer hands them on; the end-to-end measurement is in tests/test_tracing.py.
"""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
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
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from latency.breakdown import breakdown
from latency.stages import Reply, ReplyStages, Stage
from ops.metrics import Metrics

STOP_SECS = 0.2
MS = 1_000_000  # pipeline clock: nanoseconds


class _PipelineClock:
    """The pipeline's clock, stopped at its start: pushes carry their own times."""

    def get_time(self) -> int:
        return 0


class _Source:
    def get_clock(self) -> _PipelineClock:
        return _PipelineClock()


class Call:
    """Pushes frames at given pipeline times into a `ReplyStages`; keeps its replies."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.observer = ReplyStages(self.replies.append)

    async def push(
        self, at_ms: float, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        source = cast(FrameProcessor, _Source())
        await self.observer.on_push_frame(
            FramePushed(source, source, frame, direction, round(at_ms * MS))
        )

    async def caller_stops(self, at_ms: float) -> None:
        # VAD's frame carries the Unix time of its decision (the pipeline clock started now).
        stop = VADUserStoppedSpeakingFrame(
            stop_secs=STOP_SECS, timestamp=time.time() + at_ms / 1000
        )
        await self.push(0, stop, FrameDirection.UPSTREAM)  # the broadcast's other copy
        await self.push(at_ms, stop)

    async def turn_ends(self, at_ms: float) -> None:
        await self.push(at_ms, UserStoppedSpeakingFrame())
        await self.push(at_ms + 1, LLMContextFrame(context=LLMContext()))


def _transcript() -> TranscriptionFrame:
    return TranscriptionFrame(text="…", user_id="caller", timestamp="")


def _audio() -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=b"\0\0" * 160, sample_rate=8000, num_channels=1)


def _offsets(reply: Reply) -> dict[str, Any]:
    return {stage: pytest.approx(seconds, abs=0.005) for stage, seconds in reply.stages.items()}


async def test_a_reply_is_timed_stage_by_stage_from_the_callers_end_of_speech() -> None:
    call = Call()
    await call.push(0, BotStartedSpeakingFrame())  # the greeting answers no turn
    await call.caller_stops(at_ms=0)
    await call.push(300, _transcript())
    await call.push(350, _audio())  # the greeting's tail, before the turn is over
    await call.turn_ends(at_ms=400)
    await call.push(500, LLMTextFrame(text="Hello"))
    await call.push(520, LLMTextFrame(text=" there"))
    await call.push(700, _audio())
    await call.push(750, _audio())
    await call.push(702, BotStartedSpeakingFrame(), FrameDirection.UPSTREAM)
    await call.push(701, BotStartedSpeakingFrame())

    [reply] = call.replies
    assert reply.number == 1
    assert list(reply.stages) == list(Stage)
    assert reply.stages == _offsets(
        Reply(
            1,
            0,
            {
                Stage.VAD_STOP: 0.2,
                Stage.STT_FINAL: 0.5,
                Stage.TURN_END: 0.6,
                Stage.LLM_FIRST_TOKEN: 0.7,
                Stage.TTS_FIRST_AUDIO: 0.9,
                Stage.FIRST_PACKET: 0.901,
            },
        )
    )
    assert reply.latency == reply.stages[Stage.FIRST_PACKET]
    assert reply.at_ns(Stage.FIRST_PACKET) - reply.speech_ended_ns == round(reply.latency * 1e9)


async def test_a_caller_who_goes_on_is_timed_from_their_last_stop() -> None:
    call = Call()
    await call.caller_stops(at_ms=0)
    await call.push(250, _transcript())
    await call.push(300, VADUserStartedSpeakingFrame())  # a breath, then more words
    await call.caller_stops(at_ms=1000)
    await call.turn_ends(at_ms=1400)  # no transcript of the last stretch: 0, not negative
    await call.push(1500, BotStartedSpeakingFrame())

    [reply] = call.replies
    assert reply.stages == _offsets(
        Reply(
            1,
            0,
            {
                Stage.VAD_STOP: 0.2,
                Stage.STT_FINAL: 0.0,
                Stage.TURN_END: 0.6,
                Stage.FIRST_PACKET: 0.7,
            },
        )
    )


async def test_a_turn_the_caller_takes_back_has_no_reply() -> None:
    call = Call()
    await call.caller_stops(at_ms=0)
    await call.push(200, _transcript())
    await call.turn_ends(at_ms=400)
    await call.push(500, LLMTextFrame(text="Sure"))
    await call.push(600, VADUserStartedSpeakingFrame())  # barge-in before the reply plays
    await call.push(700, BotStartedSpeakingFrame())
    assert call.replies == []

    await call.caller_stops(at_ms=2000)
    await call.push(2300, _transcript())
    await call.turn_ends(at_ms=2400)
    await call.push(2600, BotStartedSpeakingFrame())
    [reply] = call.replies
    assert reply.number == 1
    assert set(reply.stages) == {
        Stage.VAD_STOP,
        Stage.STT_FINAL,
        Stage.TURN_END,
        Stage.FIRST_PACKET,
    }


def test_the_breakdown_between_two_scrapes_counts_only_the_replies_between_them() -> None:
    metrics = Metrics(live_calls=lambda: 0, capacity=1)
    series = metrics.reply_stages.labels(stage=Stage.TURN_END)
    series.observe(9.0)  # before the step: not counted
    before = metrics.exposition().decode()
    for seconds in (0.55, 0.58, 0.65, 0.7, 1.1):
        series.observe(seconds)
    after = metrics.exposition().decode()

    [(stage, stats)] = breakdown(before, after).items()
    assert stage is Stage.TURN_END
    assert stats.replies == 5
    assert stats.mean == pytest.approx(0.716)
    # As Prometheus' histogram_quantile: rank 2.5 of 5 lies in (0.5, 0.6], which holds
    # the first two, and (0.6, 0.75] the next two: 0.6 + 0.15 * (2.5 - 2) / 2.
    assert stats.p50 == pytest.approx(0.6375)
    # Rank 4.75: in (1.0, 1.25], which holds the fifth.
    assert stats.p95 == pytest.approx(1.1875)
    assert stats.as_ms() == {"mean_ms": 716.0, "p50_ms": 637.5, "p95_ms": 1187.5}
