"""The repository's nginx configuration, run for real in front of replicas on loopback.

`deploy/compose/nginx.conf` is what Compose mounts; the test renders it with
only its listen address, its replicas' addresses and nginx's own files moved
(into a temporary folder), so the tests prove the configuration that ships.
Debian's `nginx` package provides the binary (`scripts/ensure-nginx.sh`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from tests.lifecycle import Service
from tests.server_thread import free_port

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "compose" / "nginx.conf"
COMPOSE_REPLICAS = ("switchboard-1:8000", "switchboard-2:8000")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx() -> str:
    """nginx's binary: `$NGINX_BINARY`, else on the PATH or in /usr/sbin."""
    found = os.environ.get("NGINX_BINARY") or shutil.which("nginx")
    if found is None and Path("/usr/sbin/nginx").exists():
        found = "/usr/sbin/nginx"
    if found is None:
        raise RuntimeError("nginx is not installed: run scripts/ensure-nginx.sh (`make nginx`)")
    return found


def render(config: str, port: int, replicas: list[int], folder: Path) -> str:
    """The shipped configuration, listening on 127.0.0.1:`port`, in front of `replicas`."""
    assert len(replicas) == len(COMPOSE_REPLICAS)
    assert config.count("listen 80;") == 1
    config = config.replace("listen 80;", f"listen 127.0.0.1:{port};")
    for name, replica in zip(COMPOSE_REPLICAS, replicas, strict=True):
        assert config.count(name) == 1, name
        config = config.replace(name, f"127.0.0.1:{replica}")
    temp = "".join(f"    {p}_temp_path {folder / p};\n" for p in TEMP_PATHS)
    return config.replace("http {\n", "http {\n" + temp, 1)


class Nginx(Service):
    """nginx in the foreground on a free loopback port, with the shipped configuration."""

    def __init__(self, replicas: list[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = Path(tempfile.mkdtemp(prefix="switchboard-nginx-"))
        self.log_path = self.folder / "nginx.log"
        self.config = self.folder / "nginx.conf"
        self.config.write_text(render(SHIPPED.read_text(), self.port, replicas, self.folder))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start nginx; returns once it accepts connections."""
        user = "root" if os.geteuid() == 0 else ""  # as root, its workers would be `nobody`
        directives = f"daemon off; pid {self.folder / 'nginx.pid'};" + (
            f" user {user};" if user else ""
        )
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [find_nginx(), "-c", str(self.config), "-p", str(self.folder), "-g", directives],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        """nginx's access and error log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop nginx at once (SIGTERM) and remove its folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
