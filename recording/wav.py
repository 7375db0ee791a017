"""A WAV file written as a call goes: its header is right after every write.

A WAV header holds two sizes (the RIFF chunk's and the data chunk's). A file
written to the end and then given its sizes is unplayable if the process dies
first; here the sizes are patched after each write, so a crash leaves a file
that plays up to the last write. `repair` fixes a file whose writer died between
a write and its patch, from the file's length.

The open file holds an exclusive `flock`: a sweep that can take the lock knows
nobody is writing the file any more.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path
from typing import BinaryIO

HEADER_BYTES = 44
SAMPLE_BYTES = 2  # PCM16
# The data chunk's size field, and the RIFF chunk's: what follows them in the file.
DATA_SIZE_AT = 40
RIFF_SIZE_AT = 4


def header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """The 44-byte header of a PCM16 WAV holding `data_bytes` of samples."""
    block = channels * SAMPLE_BYTES
    return (
        b"RIFF"
        + struct.pack("<I", HEADER_BYTES - 8 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavWriter:
    """A PCM16 WAV file that grows: `write` appends frames and patches the header.

    Blocking file I/O: call it from a worker thread, never on the event loop.
    """

    def __init__(self, path: Path, sample_rate: int, channels: int = 2) -> None:
        """Create (or replace) the file at `path` with an empty, valid WAV, and lock it.

        Raises:
            OSError: The file could not be created.
        """
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.data_bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("wb")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.write(header(sample_rate, channels, 0))
        self._file.flush()

    @property
    def seconds(self) -> float:
        """How long the recording is so far."""
        return self.data_bytes / (self.sample_rate * self.channels * SAMPLE_BYTES)

    def write(self, frames: bytes) -> None:
        """Append interleaved PCM16 frames, then make the header say so."""
        if not frames:
            return
        self._file.seek(0, os.SEEK_END)
        self._file.write(frames)
        self.data_bytes += len(frames)
        self._patch()

    def close(self) -> None:
        """Patch the header a last time, make the file durable, and unlock it."""
        if self._file.closed:
            return
        self._patch()
        os.fsync(self._file.fileno())
        self._file.close()  # closing releases the lock

    def _patch(self) -> None:
        self._file.seek(RIFF_SIZE_AT)
        self._file.write(struct.pack("<I", HEADER_BYTES - 8 + self.data_bytes))
        self._file.seek(DATA_SIZE_AT)
        self._file.write(struct.pack("<I", self.data_bytes))
        self._file.flush()


def is_locked(path: Path) -> bool:
    """Whether a live `WavWriter` (in any process on this machine) holds `path`."""
    try:
        with path.open("rb") as file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    return False


def repair(path: Path) -> float:
    """Make the header of a WAV left by a dead writer match its length; its seconds.

    A partly written last frame is cut off.

    Raises:
        ValueError: Not a WAV this module wrote.
    """
    with path.open("r+b") as file:
        head = file.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[36:40] != b"data":
            raise ValueError(f"{path.name} is not a recording's WAV")
        channels, sample_rate = struct.unpack("<HI", head[22:28])
        block = channels * SAMPLE_BYTES
        size = file.seek(0, os.SEEK_END) - HEADER_BYTES
        size -= size % block
        file.truncate(HEADER_BYTES + size)
        file.seek(0)
        file.write(header(sample_rate, channels, size))
        os.fsync(file.fileno())
    return size / (sample_rate * block)
