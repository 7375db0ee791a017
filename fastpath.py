"""Fewer frame hops per 20 ms packet: what lets one process hold many calls.

In Pipecat every processor a frame reaches costs a queue put, a task switch
and a few event-handler calls. A telephony call sends 50 audio packets a second,
and stock Pipecat walks each through the whole pipeline:

    receive → input queue task → STT → DTMF → user aggregator (VAD) → agent → TTS
    → output transport → assistant aggregator → pipeline sink

Nothing after the user aggregator uses the caller's audio, and nothing after the
output transport uses the bot's. With the pieces here a packet goes

    receive → STT → DTMF (inline) → user aggregator (VAD) → dropped (inline)

and the bot's audio ends at the output transport.
"""

from __future__ import annotations

from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from starlette.websockets import WebSocket


class _DirectInput(FastAPIWebsocketInputTransport):
    """Pushes each received packet on at once, not through a queue and a second task.

    Pipecat's input queue exists for audio filters, which a telephony call has none of.
    """

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        """Push the caller's audio downstream from the receiving task itself."""
        if self._params.audio_in_enabled and not self._paused:
            await self.push_frame(frame)

    def _create_audio_task(self) -> None:
        if self._params.audio_in_filter:
            raise ValueError("the direct input has no audio filter stage")


class TelephonyTransport(FastAPIWebsocketTransport):
    """Pipecat's FastAPI websocket transport, with the caller's audio pushed directly."""

    def __init__(self, websocket: WebSocket, params: FastAPIWebsocketParams) -> None:
        """Serve one call's media stream.

        Args:
            websocket: The accepted media stream.
            params: As for `FastAPIWebsocketTransport`; no `audio_in_filter`.
        """
        super().__init__(websocket, params)
        self._input = _DirectInput(self, self._client, self._params, name=self._input_name)


class AudioEnd(FrameProcessor):
    """Where a kind of audio has been used up: it drops it, passes all else, inline.

    Direct mode: it runs in the pushing processor's task, so it adds no hop.
    """

    def __init__(self, kind: type[Frame], *, name: str | None = None) -> None:
        """Drop frames of `kind` (and its subclasses) going downstream."""
        super().__init__(name=name, enable_direct_mode=True)
        self._kind = kind

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass every frame on except audio of the kind used up."""
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM and isinstance(frame, self._kind):
            return
        await self.push_frame(frame, direction)


def caller_audio_end() -> AudioEnd:
    """Put after the user aggregator: the caller's audio has served STT and VAD."""
    return AudioEnd(InputAudioRawFrame, name="CallerAudioEnd")


def bot_audio_end() -> AudioEnd:
    """Put after the output transport: the bot's audio has been sent."""
    return AudioEnd(OutputAudioRawFrame, name="BotAudioEnd")
