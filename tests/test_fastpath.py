"""The fast path's processors pass and drop exactly what they should, in Pipecat pipelines."""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
    UserSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.filters.identity_filter import IdentityFilter
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import run_test
from pipecat.workers.runner import WorkerRunner

from voice.pipecat.fastpath import (
    InlineDTMFAggregator,
    blind_to_audio,
    bot_audio_end,
    caller_audio_end,
)

PACKET = bytes(640)  # 40 ms of 8 kHz PCM16 silence


def caller_audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=PACKET, sample_rate=8000, num_channels=1)


def names(frames: Sequence[Frame]) -> list[str]:
    return [type(frame).__name__ for frame in frames]


async def test_the_callers_audio_ends_where_it_is_used_up() -> None:
    transcript = TranscriptionFrame("hello", "", "2026-01-01T00:00:00Z", finalized=True)
    down, _ = await run_test(
        caller_audio_end(),
        frames_to_send=[caller_audio(), transcript, caller_audio(), TextFrame("hi")],
        expected_down_frames=[TranscriptionFrame, TextFrame],
    )
    assert down[0] is transcript


async def test_frames_going_upstream_pass_the_callers_audio_end() -> None:
    await run_test(
        caller_audio_end(),
        frames_to_send=[caller_audio(), BotStartedSpeakingFrame()],
        frames_to_send_direction=FrameDirection.UPSTREAM,
        expected_up_frames=[InputAudioRawFrame, BotStartedSpeakingFrame],
    )


async def test_the_bots_audio_ends_at_the_output_transport_and_its_words_go_on() -> None:
    await run_test(
        bot_audio_end(),
        frames_to_send=[
            BotStartedSpeakingFrame(),
            TTSAudioRawFrame(audio=PACKET, sample_rate=8000, num_channels=1),
            OutputAudioRawFrame(audio=PACKET, sample_rate=8000, num_channels=1),
            TTSTextFrame("Hello", text_type="word"),
        ],
        expected_down_frames=[BotStartedSpeakingFrame, TTSTextFrame],
    )


async def test_keys_become_a_transcript_as_with_pipecats_aggregator_and_audio_passes() -> None:
    def call() -> list[Frame]:
        return [
            caller_audio(),
            InputDTMFFrame(KeypadEntry.SEVEN),
            caller_audio(),
            InputDTMFFrame(KeypadEntry.NINE),
            InputDTMFFrame(KeypadEntry.POUND),
            caller_audio(),
        ]

    stock_down, stock_up = await run_test(DTMFAggregator(timeout=1.0), frames_to_send=call())
    down, up = await run_test(InlineDTMFAggregator(timeout=1.0), frames_to_send=call())

    assert names(down) == names(stock_down)
    assert names(up) == names(stock_up)
    assert names(down).count("InputAudioRawFrame") == 3
    [transcript] = [frame for frame in down if isinstance(frame, TranscriptionFrame)]
    assert transcript.text == "DTMF: 79#"


class Seen(BaseObserver):
    """Notes the frames pushed, as the call's observers (transcript, metrics) see them."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[str] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        self.pushed.append(type(data.frame).__name__)


class SeenProcessed(Seen):
    """Also notes the frames processed: an observer that reads processing (tracing, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.processed: list[str] = []

    async def on_process_frame(self, data: FrameProcessed) -> None:
        self.processed.append(type(data.frame).__name__)


async def test_observers_are_spared_the_heartbeats_and_processing_reaches_who_reads_it() -> None:
    seen, watcher = Seen(), SeenProcessed()
    worker = PipelineWorker(
        Pipeline([IdentityFilter()]),
        observers=[seen],
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
    )
    blind_to_audio(worker)
    worker.add_observer(watcher)  # as the metrics add theirs, after the worker is built
    await worker.queue_frames(
        [BotSpeakingFrame(), UserSpeakingFrame(), TextFrame("hi"), BotSpeakingFrame(), EndFrame()]
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()

    for observer in (seen, watcher):
        assert "TextFrame" in observer.pushed
        assert not {"BotSpeakingFrame", "UserSpeakingFrame"} & set(observer.pushed)
    assert "TextFrame" in watcher.processed
    assert "BotSpeakingFrame" not in watcher.processed


async def test_observers_see_a_calls_frames_but_not_the_callers_audio() -> None:
    seen = Seen()
    worker = PipelineWorker(
        Pipeline([IdentityFilter()]),
        observers=[seen],
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
    )
    blind_to_audio(worker)
    await worker.queue_frames(
        [
            caller_audio(),
            TextFrame("hi"),
            TTSAudioRawFrame(audio=PACKET, sample_rate=8000, num_channels=1),
            caller_audio(),
            EndFrame(),
        ]
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()

    assert "InputAudioRawFrame" not in seen.pushed
    assert {"TextFrame", "TTSAudioRawFrame"} <= set(seen.pushed)
