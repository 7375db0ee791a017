"""Both sides of a call, on one clock, as the caller heard them.

The tap sits on the call's serializer (`TappedSerializer`), where the caller's
audio arrives from the wire and the bot's leaves for it, so it hears exactly
what crosses the wire and when:

- the caller's audio (left channel) at the position its arrival puts it, one
  packet after another; a pause in what arrived of more than `GAP_SECS` stays a
  pause;
- the bot's audio (right channel) where the provider plays it: the output
  transport sends faster than real time and the provider queues it, so a chunk
  plays at its send time or when the one before it ends, whichever is later;
- a barge-in (`InterruptionFrame`, sent as `clear`) drops what was queued and not
  yet played: the bot's channel falls silent there.

On the audio path the tap only appends `(time, bytes)` to a list. `mix` places
what was appended and returns the finished stereo frames; it runs off the event
loop, once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pipecat.frames.frames import Frame, InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

Samples = NDArray[np.int16]
Placed = list[tuple[int, Samples]]  # (position in samples from the call's start, audio)

# A pause in the caller's packets longer than this is silence on the line, not jitter.
GAP_SECS = 0.2
# Mixed audio trails the clock by this much while the call goes, for late packets.
LAG_SECS = 0.25


@dataclass(frozen=True)
class Batch:
    """What the tap heard since the last batch, taken on the event loop for `mix`."""

    caller: list[tuple[float, bytes]]
    bot: list[tuple[float, bytes | None]]  # None: the bot was interrupted then
    now: float


class StereoTap:
    """One call's audio as the caller heard it: caller left, bot right, at the wire rate."""

    def __init__(self, sample_rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        """Start the call's clock now.

        Args:
            sample_rate: The call's audio rate (the pipeline runs at the wire's).
            clock: Monotonic seconds (a test's own clock).
        """
        self.sample_rate = sample_rate
        self._clock = clock
        self._start = clock()
        self._caller: list[tuple[float, bytes]] = []
        self._bot: list[tuple[float, bytes | None]] = []
        # Mixing state, owned by `mix` (one call at a time).
        self._written = 0
        self._caller_at = 0
        self._bot_at = 0
        self._caller_placed: Placed = []
        self._bot_placed: Placed = []
        self._gap = round(GAP_SECS * sample_rate)
        self._lag = round(LAG_SECS * sample_rate)

    # -- On the audio path: append only --

    def caller(self, pcm: bytes) -> None:
        """The caller's audio, as it arrived."""
        self._caller.append((self._clock(), pcm))

    def bot(self, pcm: bytes) -> None:
        """The bot's audio, as it left for the provider."""
        self._bot.append((self._clock(), pcm))

    def interrupted(self) -> None:
        """The provider was told to drop the bot's audio it has not played (`clear`)."""
        self._bot.append((self._clock(), None))

    # -- Off the audio path --

    def take(self) -> Batch:
        """Everything heard since the last `take` (on the event loop: it swaps two lists)."""
        caller, self._caller = self._caller, []
        bot, self._bot = self._bot, []
        return Batch(caller, bot, self._clock())

    def mix(self, batch: Batch, *, final: bool = False) -> bytes:
        """Place `batch` and return the stereo PCM16 frames now finished.

        Args:
            batch: From `take`.
            final: The call ended: finish the caller's audio; the bot's not yet
                played was never heard.
        """
        for at, pcm in batch.caller:
            samples = np.frombuffer(pcm, dtype="<i2")
            arrived = self._position(at) - len(samples)
            if arrived > self._caller_at + self._gap:
                self._caller_at = arrived
            start = max(self._caller_at, self._written)
            self._caller_placed.append((start, samples))
            self._caller_at = start + len(samples)
        for at, maybe_pcm in batch.bot:
            now = self._position(at)
            if maybe_pcm is None:
                self._bot_placed = _before(self._bot_placed, max(now, self._written))
                self._bot_at = min(self._bot_at, now)
                continue
            samples = np.frombuffer(maybe_pcm, dtype="<i2")
            start = max(now, self._bot_at, self._written)
            self._bot_placed.append((start, samples))
            self._bot_at = start + len(samples)
        end = self._position(batch.now)
        end = max(end, self._caller_at) if final else end - self._lag
        if end <= self._written:
            return b""
        left = np.zeros(end - self._written, dtype=np.int16)
        right = np.zeros_like(left)
        self._caller_placed = _fill(left, self._written, self._caller_placed)
        self._bot_placed = _fill(right, self._written, self._bot_placed)
        if final:
            self._caller_placed, self._bot_placed = [], []
        self._written = end
        stereo = np.empty(2 * len(left), dtype=np.int16)
        stereo[0::2], stereo[1::2] = left, right
        return stereo.astype("<i2").tobytes()

    def _position(self, at: float) -> int:
        return round((at - self._start) * self.sample_rate)


def _fill(out: Samples, offset: int, placed: Placed) -> Placed:
    """Copy what of `placed` falls in `out` (which starts at `offset`); return the rest."""
    end = offset + len(out)
    rest: Placed = []
    for start, samples in placed:
        stop = start + len(samples)
        lo, hi = max(start, offset), min(stop, end)
        if lo < hi:
            out[lo - offset : hi - offset] = samples[lo - start : hi - start]
        if stop > end:
            cut = max(start, end)
            rest.append((cut, samples[cut - start :]))
    return rest


def _before(placed: Placed, position: int) -> Placed:
    """What of `placed` comes before `position`."""
    return [(start, samples[: position - start]) for start, samples in placed if start < position]


class TappedSerializer(FrameSerializer):
    """A call's serializer, with a `StereoTap` listening to what crosses the wire."""

    def __init__(self, inner: FrameSerializer, tap: StereoTap) -> None:
        """Serialize with `inner`, telling `tap` about audio and barge-ins."""
        super().__init__()
        self.inner = inner
        self.tap = tap

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Set the provider's serializer up."""
        await self.inner.setup(setup)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Encode for the wire; the bot's audio and `clear` go to the tap as they leave."""
        if isinstance(frame, OutputAudioRawFrame):
            self.tap.bot(frame.audio)
        elif isinstance(frame, InterruptionFrame):
            self.tap.interrupted()
        return await self.inner.serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Decode from the wire; the caller's audio goes to the tap as it arrives."""
        frame = await self.inner.deserialize(data)
        if isinstance(frame, InputAudioRawFrame):
            self.tap.caller(frame.audio)
        return frame
