"""A throw-away PostgreSQL server for tests: its own cluster in a temporary folder.

Debian's `postgresql` package provides the binaries (`scripts/ensure-postgres.sh`
installs it). The server listens on 127.0.0.1 on a free port, trusts local
connections, and is removed with its folder on `stop()`. PostgreSQL refuses to
run as root, so as root it runs as the `postgres` user.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self

from tests.lifecycle import Service, came_up, stop_process
from tests.server_thread import free_port

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"


def find_binaries() -> Path:
    """The folder holding `initdb` and `postgres`: `$PG_BINDIR`, else Debian's newest."""
    if bindir := os.environ.get("PG_BINDIR"):
        return Path(bindir)
    versions = sorted(
        (p for p in DEBIAN_BINARIES.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise RuntimeError(
            "PostgreSQL is not installed: run scripts/ensure-postgres.sh (or `make postgres`)"
        )
    return versions[-1]


class PostgresServer(Service):
    """A PostgreSQL server of its own on 127.0.0.1, for one test session."""

    def __init__(self) -> None:
        self.bindir = find_binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        subprocess.run(
            args, check=True, capture_output=True, cwd=self.root, timeout=120, **self._as_user
        )

    def start(self) -> Self:
        """Create the cluster and start the server; returns once it accepts connections."""
        self._run(
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.root),
                    "-c",
                    "fsync=off",  # the tests kill the app, not the machine
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                **self._as_user,
            )
        if not came_up(self._process, self._accepts_connections, within=60, poll=0.1):
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start; see {self.log}")
        return self

    def _accepts_connections(self) -> bool:
        ready = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return ready.returncode == 0

    def create_database(self) -> str:
        """A new, empty database; returns its URL (for asyncpg)."""
        name = f"switchboard_{next(self._names)}"
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            name,
        )
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        stop_process(self._process, signal.SIGINT)
        shutil.rmtree(self.root, ignore_errors=True)
