"""A real Switchboard server in a process of its own (`python server.py`), for tests
that kill it or run several side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from settings import Settings
from tests.lifecycle import Service, came_up, stop_process
from tests.server_thread import OWN_URL, free_port

ROOT = Path(__file__).resolve().parent.parent


def clean_environment() -> dict[str, str]:
    """This process's environment without any Switchboard setting (they would leak in)."""
    ours = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in os.environ.items() if k.upper() not in ours}


class ServerProcess(Service):
    """`python server.py` on a free loopback port, configured by environment variables.

    It runs in `workdir` (no `.env` there), its output goes to `workdir/server-PORT.log`.
    """

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.workdir = workdir
        self.settings = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "MAX_CALLS": "20",
            "WORKERS": "1",
            **settings,
        }
        for name, value in self.settings.items():
            if name.upper() == "PUBLIC_URL" and value == OWN_URL:
                self.settings[name] = self.url
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 120) -> Self:
        """Start the server; returns once `/healthz` answers."""
        env = clean_environment() | {k.upper(): v for k, v in self.settings.items()}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(ROOT / "server.py")],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not came_up(self._process, self._healthy, within=within, poll=0.2):
            self.stop()
            raise RuntimeError(f"the server did not start:\n{self.log()[-3000:]}")
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def pid(self) -> int:
        """The server's process id (with WORKERS > 1, the supervisor's)."""
        assert self._process is not None
        return self._process.pid

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the server (nothing if it has exited)."""
        assert self._process is not None
        self._process.send_signal(sig)

    def poll(self) -> int | None:
        """The exit code, or None while the process runs."""
        assert self._process is not None
        return self._process.poll()

    def wait(self, within: float = 60) -> int:
        """Wait for the process to exit; its exit code."""
        assert self._process is not None
        return self._process.wait(timeout=within)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no chance to clean up."""
        self.signal(signal.SIGKILL)
        self.wait(within=30)

    def terminate(self, within: float = 60) -> int:
        """SIGTERM (a deploy's drain), then wait for the process to exit; its exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(within)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        stop_process(self._process, signal.SIGTERM)
