"""Media streams still handshaking: accepted on /ws, with no verified `start` yet.

Each one costs a socket and a task; without a bound, anyone could hold
thousands of idle ones open. A process lets at most `MAX_HANDSHAKING` sockets
handshake at once and refuses the next one at once (1013, try again later);
each handshake is bounded in time as well (`calls.stream`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger


class Handshakes:
    """Counts the sockets handshaking against a limit."""

    def __init__(self, limit: int) -> None:
        """Let at most `limit` sockets handshake at once."""
        self.limit = limit
        self.count = 0
        self._refusing = False

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Hold a handshake slot for a `with` block, if one is free; yields whether it is."""
        if self.count >= self.limit:
            if not self._refusing:  # once per flood, not once per socket
                logger.warning(f"{self.count} media streams handshaking: refusing more")
                self._refusing = True
            yield False
            return
        self.count += 1
        try:
            yield True
        finally:
            self.count -= 1
            if self.count < self.limit:
                self._refusing = False
