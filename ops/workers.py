"""Every core of a machine: `WORKERS` processes serving one port, under a supervisor.

    python server.py                      (WORKERS=2)
      supervisor   holds the port, starts the workers, passes on a drain, restarts a crash
        worker 0   `python server.py` again: its own event loop, its own MAX_CALLS,
        worker 1   listening on the same port with SO_REUSEPORT (ops/machine.py)

The supervisor makes a folder for the run: `metrics/` is prometheus-client's
multiprocess folder (`/metrics` adds every worker up), `state/` holds what each
worker publishes for the others (`/readyz`). Both go when the supervisor exits.

Signals. The first SIGTERM or SIGINT asks every worker to drain, through a file
in `state/` that each worker looks for on its 100 ms tick, not by a signal: a
service manager that signals every process of the service (systemd's default)
must not make a worker see two. Each worker drains its own calls
(ops/drain.py); the supervisor exits when all have, 0 when all exited 0. A
second signal is passed on to every worker, which then stops at once, and the
supervisor exits 128 + that signal. Workers run in a process group of their own,
so a terminal's Ctrl+C reaches the supervisor only.

A worker that exits while the machine is not draining is started again, after
1 s and twice as long each time it keeps failing (up to 30 s). A worker that
exits before it ever served means a broken configuration or machine: the
supervisor drains the others and exits 1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from loguru import logger
from prometheus_client.multiprocess import mark_process_dead

from ops.machine import STATE_DIR_ENV, WORKER_ENV, drain_request_path, listening_socket, state_path

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
POLL_SECS = 0.1
FIRST_RESTART_SECS = 1.0
MAX_RESTART_SECS = 30.0
# A worker that served this long before it exited starts again after FIRST_RESTART_SECS.
STABLE_SECS = 60.0


@dataclass
class Worker:
    """One worker process, and how it has fared."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    served: bool = False
    started_at: float = 0.0
    restart_at: float | None = None
    backoff: float = FIRST_RESTART_SECS
    exit_code: int | None = None


class Supervisor:
    """Runs `count` copies of `command` as the workers of one port."""

    def __init__(self, command: list[str], count: int, host: str, port: int) -> None:
        """Serve `host:port` with `count` workers, each started as `command`."""
        self.command = command
        self.host, self.port = host, port
        self.workers = [Worker(i) for i in range(count)]
        self.root = Path(tempfile.mkdtemp(prefix="switchboard-workers-"))
        self.metrics_dir = self.root / "metrics"
        self.state_dir = self.root / "state"
        self._signals: list[int] = []
        self._draining = False
        self._stop_signal: int | None = None
        self._broken = False

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals.append(sig)  # acted on in the loop, not in the handler

    def run(self) -> int:
        """Serve until the workers have drained; the exit status."""
        try:
            # Held (bound, never listening) for the whole run: the workers' restarts
            # keep the port, and a port taken by someone else fails here, once.
            holder = listening_socket(self.host, self.port)
        except OSError as e:
            shutil.rmtree(self.root, ignore_errors=True)
            logger.error(f"Cannot serve on {self.host}:{self.port}: {e}")
            return 1
        self.metrics_dir.mkdir()
        self.state_dir.mkdir()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        logger.info(
            f"Serving on http://{self.host}:{self.port} with {len(self.workers)} worker "
            "processes (WORKERS)"
        )
        try:
            for worker in self.workers:
                self._start(worker)
            return self._supervise()
        finally:
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
            holder.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def _start(self, worker: Worker) -> None:
        env = os.environ | {
            WORKER_ENV: str(worker.index),
            STATE_DIR_ENV: str(self.state_dir),
            METRICS_DIR_ENV: str(self.metrics_dir),
        }
        worker.process = subprocess.Popen(self.command, env=env, process_group=0)
        worker.started_at = time.monotonic()
        worker.served = False
        worker.restart_at = None
        logger.info(f"Worker {worker.index} started (pid {worker.process.pid})")

    def _supervise(self) -> int:
        while True:
            while self._signals:
                self._signalled(self._signals.pop(0))
            for worker in self.workers:
                self._check(worker)
            if self._draining and all(w.process is None for w in self.workers):
                return self._exit_status()
            time.sleep(POLL_SECS)

    def _signalled(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if not self._draining:
            logger.info(f"{name}: every worker drains its calls (signal again to stop at once)")
            self._drain()
            return
        logger.warning(f"{name} again: every worker stops now, dropping live calls")
        self._stop_signal = sig
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(sig)

    def _drain(self) -> None:
        self._draining = True
        drain_request_path(self.state_dir).touch()
        for worker in self.workers:
            worker.restart_at = None

    def _check(self, worker: Worker) -> None:
        process = worker.process
        if process is None:
            if worker.restart_at is not None and time.monotonic() >= worker.restart_at:
                self._start(worker)
            return
        if not worker.served:
            worker.served = state_path(self.state_dir, worker.index).exists()
        code = process.poll()
        if code is None:
            return
        worker.process = None
        mark_process_dead(process.pid, str(self.metrics_dir))
        state_path(self.state_dir, worker.index).unlink(missing_ok=True)
        worker.exit_code = code
        if self._draining:
            logger.info(f"Worker {worker.index} exited ({code})")
            return
        if not worker.served:
            logger.error(f"Worker {worker.index} exited ({code}) before it served: stopping")
            self._broken = True
            self._drain()
            return
        if time.monotonic() - worker.started_at > STABLE_SECS:
            worker.backoff = FIRST_RESTART_SECS
        logger.error(f"Worker {worker.index} exited ({code}): restarting in {worker.backoff:g} s")
        worker.restart_at = time.monotonic() + worker.backoff
        worker.backoff = min(worker.backoff * 2, MAX_RESTART_SECS)

    def _exit_status(self) -> int:
        if self._stop_signal is not None:
            return 128 + self._stop_signal
        if self._broken:
            return 1
        clean = all(w.exit_code == 0 for w in self.workers)
        logger.info("Every worker has drained" if clean else "A worker did not exit cleanly")
        return 0 if clean else 1


def supervise(command: list[str], count: int, host: str, port: int) -> None:
    """Serve with `count` workers started as `command`; exits with the supervisor's status."""
    raise SystemExit(Supervisor(command, count, host, port).run())
