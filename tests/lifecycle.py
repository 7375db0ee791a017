"""What the test servers share: `with` starts and stops them; a child process is waited for
until it serves, and stopped politely before it is killed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self


class Service:
    """A server a test starts and stops; `with service:` is `start()`, then `stop()`."""

    def start(self) -> Self:
        """Start serving; returns once it accepts connections."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving; nothing if it is not running."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def came_up(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], within: float, poll: float
) -> bool:
    """Poll `ready()` until it is true, while the process runs.

    Args:
        process: The child process that is starting.
        ready: Whether it serves yet.
        within: Seconds to give it.
        poll: Seconds between two looks.

    Returns:
        True once `ready()` is; False if the process exited or the time ran out first.
    """
    deadline = time.monotonic() + within
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def stop_process(
    process: subprocess.Popen[bytes] | None, sig: signal.Signals, within: float = 30
) -> None:
    """Send `sig`, wait for the process to exit, and SIGKILL it if it lingers.

    Args:
        process: The child process; nothing happens if it is None or has exited.
        sig: The polite signal (SIGTERM for a server, SIGINT for PostgreSQL's fast shutdown).
        within: Seconds to wait before the SIGKILL.
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
