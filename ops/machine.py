"""One machine, several worker processes: what a worker shares with its siblings.

Under the supervisor (`ops/workers.py`, `WORKERS` > 1) each worker process

    - listens on the machine's port with SO_REUSEPORT (`listening_socket`): the
      kernel spreads new connections over the workers;
    - drains when the supervisor asks (`Machine.drain_requested`);
    - publishes its live calls, its `MAX_CALLS` and whether it drains, in a
      small file of its own (`Machine.publish`, on every change of its admission);
    - reads its siblings' files (`Machine.others_have_room`), so that `/readyz`,
      the webhook and `/dialout` refuse only when no process on the machine can
      take a call (the media stream then lands on any of them).

The supervisor names the folder and the worker's index in the environment;
without them (`WORKERS=1`, tests' in-process servers) there is no `Machine`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

# Set by the supervisor in each worker's environment.
WORKER_ENV = "SWITCHBOARD_WORKER"
STATE_DIR_ENV = "SWITCHBOARD_WORKER_STATE"


class Slots(Protocol):
    """What a worker publishes of its admission control (`ops.admission.Admission`)."""

    @property
    def live(self) -> int: ...

    max_calls: int
    draining: bool


@dataclass(frozen=True)
class WorkerState:
    """What one worker published: its calls against its capacity, and whether it drains."""

    index: int
    pid: int
    calls: int
    max_calls: int
    draining: bool

    @property
    def has_room(self) -> bool:
        """Whether this worker would take a new call."""
        return not self.draining and self.calls < self.max_calls


def state_path(directory: Path, index: int) -> Path:
    """Where worker `index` publishes its state."""
    return directory / f"worker-{index}.json"


def drain_request_path(directory: Path) -> Path:
    """The file whose presence asks every worker to drain."""
    return directory / "drain"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Machine:
    """This worker's view of the machine: its own published state and its siblings'."""

    def __init__(self, directory: Path, index: int) -> None:
        """Publish as worker `index` in `directory`, and read the others there."""
        self.directory = directory
        self.index = index
        self._path = state_path(directory, index)
        self._published: tuple[int, bool, int] | None = None

    @classmethod
    def from_environment(cls) -> Machine | None:
        """The machine this process is a worker of, or None when it serves alone."""
        index, directory = os.environ.get(WORKER_ENV), os.environ.get(STATE_DIR_ENV)
        if index is None or directory is None:
            return None
        return cls(Path(directory), int(index))

    def publish(self, admission: Slots) -> None:
        """Write this worker's state when it changed (atomically: readers never see half)."""
        current = (admission.live, admission.draining, admission.max_calls)
        if current == self._published:
            return
        state = WorkerState(
            index=self.index,
            pid=os.getpid(),
            calls=admission.live,
            max_calls=admission.max_calls,
            draining=admission.draining,
        )
        partial = self._path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(asdict(state)))
        os.replace(partial, self._path)
        self._published = current

    def states(self) -> list[WorkerState]:
        """Every live worker's last published state, this one's included."""
        states = []
        for path in sorted(self.directory.glob("worker-*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                state = WorkerState(**json.loads(path.read_text()))
                if _alive(state.pid):
                    states.append(state)
        return states

    def drain_requested(self) -> bool:
        """Whether the supervisor asked the workers to drain."""
        return drain_request_path(self.directory).exists()

    def others_have_room(self) -> bool:
        """Whether another worker of this machine would take a new call."""
        return any(s.has_room for s in self.states() if s.index != self.index)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` with SO_REUSEPORT, shared with the other workers.

    It is not listening yet: uvicorn listens once the app has started, so no
    connection waits on a worker still loading its models.

    Raises:
        OSError: The port is taken by a process that does not share it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
