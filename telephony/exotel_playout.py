"""Exotel's playout rules: chunk sizes it plays without gaps, and when audio has been heard.

- Outbound `media` chunks must be a multiple of 320 bytes, from 3,200 bytes to
  100 KB; anything else makes Exotel wait 20 ms between chunks, which the
  caller hears as gaps (`Rechunker`).
- Exotel plays what it gets in order, in real time, and closing the websocket
  drops whatever it has not played yet (`Playout` tells when that is).
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_ALIGN = 320
MIN_CHUNK = 3200
MAX_CHUNK = 100_000 - 100_000 % CHUNK_ALIGN

# Bot audio quieter than this is padding, not speech the caller waits to hear.
AUDIBLE_PEAK = 64


def chunk_10ms_count(sample_rate: int) -> int:
    """The fewest 10 ms blocks of PCM16 at `sample_rate` that make one valid Exotel chunk."""
    block = sample_rate // 100 * 2
    count = math.ceil(MIN_CHUNK / block)
    while (count * block) % CHUNK_ALIGN:
        count += 1
    return count


class Rechunker:
    """Regroups outbound PCM16 into chunks Exotel plays without gaps.

    A chunk goes out as soon as 3,200 bytes are pending, cut to a multiple of
    320 bytes and at most 100 KB; the rest waits for the next audio.
    """

    def __init__(self) -> None:
        self._pending = bytearray()

    @property
    def pending(self) -> int:
        """Bytes waiting for more audio."""
        return len(self._pending)

    def push(self, pcm: bytes) -> bytes | None:
        """Add audio; return the next chunk to send, if one is complete."""
        self._pending += pcm
        if len(self._pending) < MIN_CHUNK:
            return None
        size = min(len(self._pending) - len(self._pending) % CHUNK_ALIGN, MAX_CHUNK)
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        return chunk

    def clear(self) -> None:
        """Drop the pending audio (the caller interrupted)."""
        self._pending.clear()


class Playout:
    """When the audio sent so far will have been heard: Exotel plays it in order, in real time."""

    def __init__(self, sample_rate: int) -> None:
        self._bytes_per_sec = sample_rate * 2
        self._ends_at = 0.0
        self.speech_ends_at = 0.0

    def sent(self, chunk: bytes, now: float) -> None:
        """Account for a chunk handed to Exotel at monotonic time `now`."""
        starts_at = max(now, self._ends_at)
        self._ends_at = starts_at + len(chunk) / self._bytes_per_sec
        samples = np.abs(np.frombuffer(chunk, dtype="<i2").astype(np.int32))
        audible = np.flatnonzero(samples > AUDIBLE_PEAK)
        if audible.size:
            heard = (int(audible[-1]) + 1) * 2 / self._bytes_per_sec
            self.speech_ends_at = starts_at + heard

    def cleared(self) -> None:
        """Exotel dropped everything not yet played."""
        self._ends_at = self.speech_ends_at = 0.0

    def speech_remaining(self, now: float) -> float:
        """Seconds until the last speech sent has been played: negative once it has."""
        return self.speech_ends_at - now
