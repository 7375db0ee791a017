"""Fewer frame hops per 20 ms packet: what lets one process hold many calls.

In Pipecat every processor a frame reaches costs a queue put, a task switch
and a few event-handler calls. A telephony call sends 50 audio packets a second,
and stock Pipecat walks each through the whole pipeline:

    receive → input queue task → STT → DTMF → user aggregator (VAD) → agent → TTS
    → output transport → assistant aggregator → pipeline sink

Nothing after the user aggregator uses the caller's audio, and nothing after the
output transport uses the bot's. With the pieces here a packet goes

    receive → STT → DTMF (inline) → user aggregator (VAD) → dropped (inline)

in frames of two packets, and the bot's audio ends at the output transport.
Observers see neither (`AudioBlindObserver`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import (
    BotSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    UserSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.frame_processor import FrameCallback, FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from starlette.websockets import WebSocket

from voice.pipecat.turns import SegmentTranscribedFrame
from voice.pipecat.vad import FastSileroVAD
from voice.prompts import PromptPlayer

# Caller audio per frame while they are quiet.
QUIET_FRAME_MS = 100
PACKET_MS = 20  # one Twilio media packet


class _DirectInput(FastAPIWebsocketInputTransport):
    """Pushes the caller's audio on from the receiving task, in frames as long as `frame_ms()`.

    Pipecat queues each packet for a second task, which exists for audio
    filters; a telephony call has none. And a long frame costs every processor
    it passes about what a 20 ms one does, so several of Twilio's 20 ms packets
    travel as one (see `TelephonyTransport.follow`).
    """

    def __init__(self, *args: Any, frame_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frame_ms: Callable[[], int] = lambda: frame_ms
        self._pending = bytearray()

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        """Push the caller's audio downstream once a frame's worth has arrived."""
        if not self._params.audio_in_enabled or self._paused:
            return
        self._pending += frame.audio
        frame_bytes = self.frame_ms() * frame.sample_rate * 2 * frame.num_channels // 1000
        if len(self._pending) < frame_bytes:
            return
        audio, self._pending = bytes(self._pending), bytearray()
        merged = InputAudioRawFrame(
            audio=audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels
        )
        if self.next is not None:  # straight to STT: no observer wants audio pushes
            await self.next.queue_frame(merged, FrameDirection.DOWNSTREAM)

    def _create_audio_task(self) -> None:
        if self._params.audio_in_filter:
            raise ValueError("the direct input has no audio filter stage")


class TelephonyTransport(FastAPIWebsocketTransport):
    """Pipecat's FastAPI websocket transport, with the caller's audio pushed directly."""

    def __init__(
        self, websocket: WebSocket, params: FastAPIWebsocketParams, *, audio_in_frame_ms: int = 40
    ) -> None:
        """Serve one call's media stream.

        Args:
            websocket: The accepted media stream.
            params: As for `FastAPIWebsocketTransport`; no `audio_in_filter`.
            audio_in_frame_ms: Caller audio per pipeline frame while they speak; a
                packet is never split.
        """
        super().__init__(websocket, params)
        self._frame_ms = audio_in_frame_ms
        self._direct = _DirectInput(
            self, self._client, self._params, name=self._input_name, frame_ms=audio_in_frame_ms
        )
        self._input = self._direct

    async def line_goes_quiet(self, seconds: float) -> None:
        """The caller hung up: the line goes quiet, so what they were saying ends.

        VAD then hears the end of their last words, and the STT transcribes them.
        """
        rate = self._direct.sample_rate
        packet = bytes(2 * rate * PACKET_MS // 1000)
        for _ in range(round(seconds * 1000 / PACKET_MS)):
            await self._direct.push_audio_frame(
                InputAudioRawFrame(audio=packet, sample_rate=rate, num_channels=1)
            )

    def follow(self, vad: FastSileroVAD) -> None:
        """Size the caller's frames by what `vad` is listening for.

        - counting the silence after the caller's last word: each packet at once,
          since a reply waits on the stop;
        - the caller quiet for a while (most of a call): `QUIET_FRAME_MS`, which
          only delays noticing that they start to speak, something VAD takes
          200 ms over anyway;
        - the caller speaking, or just stopped (they may go on, and whether the
          turn is over hangs on noticing it soon): `audio_in_frame_ms`.
        """

        def frame_ms() -> int:
            if vad.counting_stop:
                return 0
            if vad.caller_quiet:
                return max(QUIET_FRAME_MS, self._frame_ms)
            return self._frame_ms

        self._direct.frame_ms = frame_ms


class InlineDTMFAggregator(DTMFAggregator):
    """Pipecat's DTMF aggregator, run inline, with the caller's audio handed straight on."""

    def __init__(self, **kwargs: Any) -> None:
        """As `DTMFAggregator`, in direct mode."""
        super().__init__(enable_direct_mode=True, **kwargs)

    async def queue_frame(
        self,
        frame: Frame,
        direction: FrameDirection = FrameDirection.DOWNSTREAM,
        callback: FrameCallback | None = None,
    ) -> None:
        """Hand audio to the next processor as is; aggregate everything else."""
        if isinstance(frame, InputAudioRawFrame) and callback is None and self.next:
            await self.next.queue_frame(frame, direction)
            return
        await super().queue_frame(frame, direction, callback)


class AudioEnd(FrameProcessor):
    """Where a kind of frame has been used up (audio, mostly): it drops it, passes all else, inline.

    Direct mode: it runs in the pushing processor's task, so it adds no hop.
    """

    def __init__(
        self, kind: type[Frame] | tuple[type[Frame], ...], *, name: str | None = None
    ) -> None:
        """Drop frames of `kind` (and its subclasses) going downstream."""
        super().__init__(name=name, enable_direct_mode=True)
        self._kind = kind

    async def queue_frame(
        self,
        frame: Frame,
        direction: FrameDirection = FrameDirection.DOWNSTREAM,
        callback: FrameCallback | None = None,
    ) -> None:
        """Drop used-up audio on arrival; process everything else."""
        used_up = direction is FrameDirection.DOWNSTREAM and isinstance(frame, self._kind)
        if used_up and callback is None:
            return
        await super().queue_frame(frame, direction, callback)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass every frame on except audio of the kind used up."""
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM and isinstance(frame, self._kind):
            return
        await self.push_frame(frame, direction)


class AudioBlindObserver(WorkerObserver):
    """Pipecat's worker observer, told only what its observers can use.

    It queues every frame pushed, and every frame processed, for each observer,
    to a task of its own: with three observers (transcript, first audio, reply
    latency) that was a third of a call's CPU, nearly all of it audio. No
    observer reads audio but the latency one, which marks a reply's first TTS
    audio: the TTS's own pushes still reach it. Nor does any read the "still
    speaking" heartbeats (`BotSpeakingFrame` with each chunk of the bot's audio,
    `UserSpeakingFrame` with each of the caller's): after audio, the most
    frequent frames. And processed frames are queued only while some observer
    looks at them (overrides `on_process_frame`): none of Switchboard's does.
    """

    def __init__(self, *, observers: list[BaseObserver] | None = None, **kwargs: Any) -> None:
        """Watch for `observers`, as Pipecat's `WorkerObserver` does."""
        super().__init__(observers=observers, **kwargs)
        self._processed_wanted = any(map(_watches_processing, observers or []))

    def add_observer(self, observer: BaseObserver) -> None:
        """Add an observer, as Pipecat does; processed frames are queued if it reads them."""
        super().add_observer(observer)
        self._processed_wanted = self._processed_wanted or _watches_processing(observer)

    async def on_push_frame(self, data: FramePushed) -> None:
        """Queue the push for the observers, unless it is a frame no observer reads."""
        if not _unobserved(data.frame, data.source):
            await super().on_push_frame(data)

    async def on_process_frame(self, data: FrameProcessed) -> None:
        """Queue the processing for observers that read it, unless no observer reads the frame."""
        if self._processed_wanted and not _unobserved(data.frame, data.processor):
            await super().on_process_frame(data)


def _watches_processing(observer: BaseObserver) -> bool:
    return type(observer).on_process_frame is not BaseObserver.on_process_frame


def _unobserved(frame: Frame, processor: FrameProcessor) -> bool:
    if isinstance(frame, (InputAudioRawFrame, BotSpeakingFrame, UserSpeakingFrame)):
        return True
    # The prompt player passes the TTS's audio on (the TTS's own push is observed).
    senders = (BaseOutputTransport, PromptPlayer)
    return isinstance(frame, OutputAudioRawFrame) and isinstance(processor, senders)


def blind_to_audio(worker: PipelineWorker) -> None:
    """Give `worker`, before it runs, an observer that skips audio (`AudioBlindObserver`).

    Pipecat builds the worker's observer itself; this swaps it for the subclass,
    with the same observers.
    """
    observers = worker._observer._observers
    worker._observer = AudioBlindObserver(observers=observers)


def caller_audio_end() -> AudioEnd:
    """Put after the user aggregator: the caller's audio has served STT and VAD.

    So have the STT's `SegmentTranscribedFrame`s, which only the turn strategy reads.
    """
    return AudioEnd((InputAudioRawFrame, SegmentTranscribedFrame), name="CallerAudioEnd")


def bot_audio_end() -> AudioEnd:
    """Put after the output transport: the bot's audio has been sent."""
    return AudioEnd(OutputAudioRawFrame, name="BotAudioEnd")
