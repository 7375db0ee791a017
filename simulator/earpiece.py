"""What the simulated caller hears: the bot's audio played out as Twilio plays it.

Twilio queues the bot's media and marks, plays 20 ms each tick of the caller's
clock, echoes a mark once everything before it was played, and drops what is
queued on `clear`. The earpiece models that buffer, keeps what was played, and
tells when each reply began.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator

from simulator.audio import FRAME_BYTES, SAMPLE_RATE, is_audible

# A pause in bot audio at least this long separates one reply from the next.
REPLY_GAP = 0.4


class Earpiece:
    """The playout buffer of one call, and the timeline of the bot's audio.

    Attributes:
        first_audio_at: Monotonic arrival time of the first audible bot audio.
        last_media_at: Monotonic arrival time of the latest bot media, audible or not.
    """

    def __init__(self) -> None:
        self.first_audio_at: float | None = None
        self.last_media_at = -math.inf
        self._queue: deque[bytes | str] = deque()  # audio chunks and mark names
        self._offset = 0
        self._unplayed = 0
        self._heard = bytearray()
        self._audio_times: list[float] = []
        self._clear_times: list[float] = []
        self._heard_times: list[float] = []  # when each audible frame was played

    @property
    def heard(self) -> bytes:
        """8 kHz PCM16 played out so far, back to back."""
        return bytes(self._heard)

    @property
    def unplayed_secs(self) -> float:
        """Seconds of bot audio queued and not yet played."""
        return self._unplayed / (2 * SAMPLE_RATE)

    def queued_audio(self) -> Iterator[bytes]:
        """The audio chunks still queued."""
        return (item for item in self._queue if isinstance(item, bytes))

    def media(self, arrived: float, audio: bytes) -> None:
        """Queue bot audio that arrived at monotonic time `arrived`."""
        self.last_media_at = arrived
        if is_audible(audio):
            self._audio_times.append(arrived)
            if self.first_audio_at is None:
                self.first_audio_at = arrived
        self._queue.append(audio)
        self._unplayed += len(audio)

    def mark(self, name: str) -> None:
        """Queue a mark, to be echoed once the audio before it has played."""
        self._queue.append(name)

    def clear(self, arrived: float) -> list[str]:
        """Drop everything queued; return the marks dropped (Twilio echoes them at once)."""
        self._clear_times.append(arrived)
        marks = [item for item in self._queue if isinstance(item, str)]
        self._queue.clear()
        self._offset = self._unplayed = 0
        return marks

    def play_frame(self, at: float) -> None:
        """Play one 20 ms frame's worth of queued audio, at monotonic time `at`."""
        budget = FRAME_BYTES
        start = len(self._heard)
        while budget and self._queue:
            audio = self._queue[0]
            if not isinstance(audio, bytes):
                break
            played = audio[self._offset : self._offset + budget]
            self._heard += played
            budget -= len(played)
            self._unplayed -= len(played)
            self._offset += len(played)
            if self._offset == len(audio):
                self._queue.popleft()
                self._offset = 0
        if is_audible(bytes(self._heard[start:])):
            self._heard_times.append(at)

    def heard_between(self, since: float, until: float) -> list[float]:
        """When the caller heard bot audio (audible frames played) between two moments."""
        times = self._heard_times
        return times[bisect.bisect_left(times, since) : bisect.bisect_right(times, until)]

    def reached_marks(self) -> Iterator[str]:
        """Take the marks at the head of the queue: all audio before them has played."""
        while self._queue and isinstance(name := self._queue[0], str):
            self._queue.popleft()
            yield name

    def first_arrival(self, since: float) -> float | None:
        """When audible bot audio first arrived after `since`, if it has."""
        index = bisect.bisect_right(self._audio_times, since)
        return self._audio_times[index] if index < len(self._audio_times) else None

    def reply_starts(self, utterance_ends: list[float]) -> list[float | None]:
        """When the bot's reply to each utterance began, aligned with `utterance_ends`.

        A reply is the first audible bot audio after the utterance ended;
        when the bot was still talking as it ended, the reply is the first
        audio after a ``clear`` or a pause of ``REPLY_GAP`` seconds. A reply
        must start before the next utterance ends, else it is None.
        """
        ends = utterance_ends
        return [
            self._reply_start(end, ends[i + 1] if i + 1 < len(ends) else math.inf)
            for i, end in enumerate(ends)
        ]

    def _reply_start(self, end: float, next_end: float) -> float | None:
        times = self._audio_times
        index = bisect.bisect_right(times, end)
        previous = times[index - 1] if index else -math.inf
        for arrival in times[index : bisect.bisect_right(times, next_end)]:
            cleared = bisect.bisect_right(self._clear_times, previous) < bisect.bisect_right(
                self._clear_times, arrival
            )
            if arrival - previous >= REPLY_GAP or cleared or end - previous >= REPLY_GAP:
                return arrival
            previous = arrival
        return None
