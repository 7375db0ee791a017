"""The benchmark's processes: servers pinned to a core, the load generator, /proc readings."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import stages
from bench.loadgen import cpu_seconds
from bench.plan import Plan, Server

ROOT = Path(__file__).resolve().parent.parent
PRIORITY = -10  # nice value for the server and the load generator


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_priority() -> None:
    """In a child before exec: run ahead of other work on a shared machine, if allowed.

    The cores are shared; without this, whoever else is busy sets the capacity.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)
    # With autogroup scheduling a nice value only counts within its session: give
    # the benchmark's process a session of its own, and that session the priority.
    with contextlib.suppress(OSError):
        os.setsid()
        Path("/proc/self/autogroup").write_text(str(PRIORITY))


def pin_threads(pid: int, core: int) -> None:
    """Keep every thread of a process on `core`.

    `taskset` pins the process, but a library may pin its own worker threads
    elsewhere (onnxruntime's default pool, as Piper's session uses, does).
    """
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(task.name), {core})


def run_queue_wait(pid: int) -> float:
    """Seconds a process (and its workers) spent runnable but waiting for a CPU (schedstat)."""
    try:
        return sum(
            int(Path(f"/proc/{p}/schedstat").read_text().split()[1]) / 1e9
            for p in process_tree(pid)
        )
    except (OSError, IndexError, ValueError):
        return math.nan


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a supervisor's workers), in MB."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total or math.nan


def process_tree(pid: int) -> list[int]:
    """`pid` and every process it started, and theirs (/proc's children lists)."""
    tree, index = [pid], 0
    while index < len(tree):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{tree[index]}/task").iterdir():
                tree += [int(c) for c in (task / "children").read_text().split()]
        index += 1
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by `pid` and the processes it started that still run."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


@contextlib.contextmanager
def running_server(server: Server, plan: Plan, workdir: Path) -> Iterator[tuple[int, int]]:
    """Start `server` pinned to its core (or cores); yield (pid, port) once it is up."""
    port = free_port()
    log = (workdir / f"{server.name}.log").open("w")
    cores = _cores(server, plan, plan.server_core)
    command = ["taskset", "-c", cores, *server.command, "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_priority
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server.name} exited: see {log.name}")
            if _serving(port, server.workers):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} did not start: see {log.name}")
            time.sleep(0.2)
        yield process.pid, port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _cores(server: Server, plan: Plan, core: int) -> str:
    # Several workers, or one process on every core: the load generator then shares them.
    return ",".join(map(str, plan.cores)) if server.spans_cores else str(core)


def _serving(port: int, workers: int) -> bool:
    """Whether the server accepts connections, and with several workers, all serve."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            pass
        if workers == 1:
            return True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return len(json.loads(answer.read())["workers"]) == workers
    except (OSError, KeyError, ValueError):
        return False


def run_load(
    port: int,
    pid: int,
    calls: int,
    secs: float,
    ramp: float | None,
    plan: Plan,
    workdir: Path,
    server: Server,
) -> dict[str, Any]:
    """One load step: the load generator's results, and the server's CPU and memory."""
    out = workdir / "step.json"
    command = [
        "taskset", "-c", _cores(server, plan, plan.loadgen_core),
        sys.executable, "-m", "bench.loadgen",
        "--url", f"ws://127.0.0.1:{port}/ws",
        "--calls", str(calls),
        "--duration", str(secs),
        "--speech", str(workdir / "caller.wav"),
        "--out", str(out),
    ]  # fmt: skip
    if ramp is not None:
        command += ["--ramp", str(ramp)]
    if not server.spans_cores:
        pin_threads(pid, plan.server_core)
    rss_before = rss_mb(pid)
    metrics_before = stages.scrape(port)
    cpu_before, wall_before = tree_cpu_seconds(pid), time.monotonic()
    wait_before = run_queue_wait(pid)
    loadgen = subprocess.Popen(command, cwd=ROOT, preexec_fn=raise_priority)
    samples: list[float] = []  # the process tree's RSS, every half second
    while loadgen.poll() is None:
        time.sleep(0.5)
        with contextlib.suppress(OSError):
            samples.append(rss_mb(pid))
    wall = time.monotonic() - wall_before
    cpu = (tree_cpu_seconds(pid) - cpu_before) / wall
    waited = (run_queue_wait(pid) - wait_before) / wall
    if loadgen.returncode != 0:
        raise RuntimeError(f"the load generator failed ({loadgen.returncode})")
    report = json.loads(out.read_text())
    # While every call is up: the second half of the step (the calls start within its first).
    steady = samples[len(samples) // 2 :] or [rss_before]
    report.update(
        server_cpu=cpu,
        server_cpu_wait=waited,
        rss_before_mb=rss_before,
        rss_peak_mb=max([rss_before, *samples]),
        rss_steady_mb=statistics.median(steady),
        stages=stages.between(metrics_before, stages.scrape(port)),
    )
    return report
