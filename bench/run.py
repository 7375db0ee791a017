"""The benchmark: calls per core and reply latency, Switchboard against stock Pipecat.

    python -m bench.run                 # full: about 20 minutes
    BENCH_QUICK=1 python -m bench.run   # quick: under ten minutes
    python -m bench.run --mode smoke --out /tmp/x   # CI: two calls, no timing judged

For each server it starts the server pinned to one core (`taskset`), runs the
load generator pinned to another, and steps the number of concurrent calls up
until the server falls behind: p95 reply overhead over `LATENCY_LIMIT_MS`,
replies missed, the bot's audio late against real time, or replies slowing
down during the step (a growing backlog). The largest N that held is the
server's capacity: calls per core.

Reply overhead is the reply latency (last frame of the caller's utterance →
first bot audio) minus the waits the server is configured to make: VAD's stop
time and the user-turn pause. What is left is what the server and framework
add. Servers:

    switchboard          Switchboard with the instant bench services
    baseline             Pipecat's Twilio example, same services and turn pause
    baseline_smart_turn  the example verbatim: default turn strategy (Smart Turn v3)
    offline              Switchboard with the real offline stack (Whisper + Piper)

The server and the load generator run in a session of their own at nice -10
where allowed: on a shared machine, someone else's build otherwise sets the
capacity. Results go to `bench/results/latest.json` and
`bench/results/latency_vs_calls.png`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.loadgen import cpu_seconds
from bot import USER_PAUSE_SECS
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LATENCY_LIMIT_MS = 250.0
# The bot's audio may arrive this much behind real time before the caller hears a gap.
LATENESS_LIMIT_MS = 100.0
# Replies in the second half of a step slower than in the first by this much: backlog.
BACKLOG_LIMIT_MS = 100.0
# Fewer replies than this in either half, and the two medians say nothing (one
# offline call, whose replies vary with Whisper's work by as much as the limit).
BACKLOG_MIN_REPLIES = 4
MISSED_LIMIT = 0.02
VAD_STOP_SECS = float(Settings.model_fields["vad_stop_secs"].default)  # Pipecat's default too
BURST_CALLS = 20
PRIORITY = -10  # nice value for the server and the load generator


@dataclass(frozen=True)
class Server:
    """A server under test and the waits its configuration puts in every reply."""

    name: str
    command: list[str]
    configured_wait_secs: float
    latency_limit_ms: float = LATENCY_LIMIT_MS
    steps: tuple[int, ...] = ()
    burst: bool = True  # also start BURST_CALLS calls within a second


@dataclass
class Plan:
    """How long and how far the benchmark goes."""

    mode: str
    step_secs: float
    warmup_secs: float
    bisect: int
    burst_calls: int
    burst_secs: float
    server_core: int
    loadgen_core: int
    servers: list[Server] = field(default_factory=list)


MODES = ("full", "quick", "smoke")


def plan(mode: str, workdir: Path) -> Plan:
    """The servers and steps for a full, quick, or smoke (CI: tiny N, no timing) run."""
    cores = sorted(os.sched_getaffinity(0))
    server_core, loadgen_core = cores[0], cores[-1]
    clip = str(workdir / "clip.wav")
    data = ["--data", str(workdir)]
    python = sys.executable
    both = VAD_STOP_SECS + USER_PAUSE_SECS
    steps_by_mode: dict[str, dict[str, tuple[int, ...]]] = {
        "full": {
            "switchboard": (4, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192),
            "baseline": (2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64),
            "baseline_smart_turn": (1, 2, 4, 6, 8, 12, 16),
            "offline": (1, 2, 3, 4, 5, 6, 8, 10),
        },
        "quick": {
            "switchboard": (4, 16, 32, 48, 64, 80, 96, 128, 160),
            "baseline": (4, 8, 12, 16, 20, 24, 32, 40, 48, 64),
            "baseline_smart_turn": (1, 2, 4, 8, 12, 16),
            "offline": (1, 2, 3, 4, 6),
        },
        "smoke": {"switchboard": (2,), "baseline": (2,)},
    }
    steps = steps_by_mode[mode]
    servers = [
        Server(
            "switchboard",
            [python, "-m", "bench.switchboard", "--profile", "bench", "--clip", clip, *data],
            both,
        ),
        Server(
            "baseline",
            [python, "-m", "bench.baseline", "--pause", str(USER_PAUSE_SECS), "--clip", clip],
            both,
        ),
        Server(
            "baseline_smart_turn", [python, "-m", "bench.baseline", "--clip", clip], VAD_STOP_SECS
        ),
        # Whisper transcribing and Piper speaking count as overhead here, on the same
        # core (~0.85 s for one call): allow for them.
        Server(
            "offline",
            [python, "-m", "bench.switchboard", "--profile", "offline", *data],
            both,
            latency_limit_ms=1000.0,
            burst=False,
        ),
    ]
    return Plan(
        mode=mode,
        step_secs={"full": 40.0, "quick": 16.0, "smoke": 8.0}[mode],
        warmup_secs=0.0 if mode == "smoke" else 6.0,
        bisect={"full": 2, "quick": 1, "smoke": 0}[mode],
        burst_calls=3 if mode == "smoke" else BURST_CALLS,
        burst_secs=4.0 if mode == "smoke" else 8.0,
        server_core=server_core,
        loadgen_core=loadgen_core,
        servers=[dataclasses.replace(s, steps=steps[s.name]) for s in servers if s.name in steps],
    )


# -- Audio --------------------------------------------------------------------


def trim_silence(pcm: bytes, threshold: int = 200) -> bytes:
    """Cut leading and trailing near-silence, so "last frame" means the end of speech."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > threshold)[0]
    if loud.size == 0:
        return pcm
    return samples[loud[0] : loud[-1] + 1].tobytes()


def prepare_audio(workdir: Path) -> dict[str, float]:
    """Synthesize, once, the caller's utterance and the bench TTS clip (Piper, 8 kHz)."""
    from bench.services import ANSWER, TRANSCRIPT
    from simulator import synthesize, write_wav

    caller = trim_silence(synthesize(TRANSCRIPT))
    clip = trim_silence(synthesize(ANSWER))
    write_wav(workdir / "caller.wav", caller)
    write_wav(workdir / "clip.wav", clip)
    return {"caller_secs": len(caller) / 16000, "bot_reply_secs": len(clip) / 16000}


# -- Processes ----------------------------------------------------------------


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
    """Seconds a process has spent runnable but waiting for a CPU (/proc schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return math.nan


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@contextlib.contextmanager
def running_server(server: Server, core: int, workdir: Path) -> Iterator[tuple[int, int]]:
    """Start `server` pinned to `core`; yield (pid, port) once it accepts connections."""
    port = free_port()
    log = (workdir / f"{server.name}.log").open("w")
    command = ["taskset", "-c", str(core), *server.command, "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_priority
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server.name} exited: see {log.name}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
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


def run_load(
    port: int, pid: int, calls: int, secs: float, ramp: float | None, plan: Plan, workdir: Path
) -> dict[str, Any]:
    """One load step: the load generator's results, and the server's CPU and memory."""
    out = workdir / "step.json"
    command = [
        "taskset", "-c", str(plan.loadgen_core),
        sys.executable, "-m", "bench.loadgen",
        "--url", f"ws://127.0.0.1:{port}/ws",
        "--calls", str(calls),
        "--duration", str(secs),
        "--speech", str(workdir / "caller.wav"),
        "--out", str(out),
    ]  # fmt: skip
    if ramp is not None:
        command += ["--ramp", str(ramp)]
    pin_threads(pid, plan.server_core)
    rss_before = rss_mb(pid)
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    wait_before = run_queue_wait(pid)
    loadgen = subprocess.Popen(command, cwd=ROOT, preexec_fn=raise_priority)
    peak_rss = rss_before
    while loadgen.poll() is None:
        time.sleep(0.5)
        with contextlib.suppress(OSError):
            peak_rss = max(peak_rss, rss_mb(pid))
    wall = time.monotonic() - wall_before
    cpu = (cpu_seconds(pid) - cpu_before) / wall
    waited = (run_queue_wait(pid) - wait_before) / wall
    if loadgen.returncode != 0:
        raise RuntimeError(f"the load generator failed ({loadgen.returncode})")
    report = json.loads(out.read_text())
    report.update(
        server_cpu=cpu, server_cpu_wait=waited, rss_before_mb=rss_before, rss_peak_mb=peak_rss
    )
    return report


# -- Statistics ------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max, or None each when there is nothing to measure."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
        "p99": round(float(np.percentile(array, 99)), 1),
        "max": round(float(array.max()), 1),
        "n": len(values),
    }


def summarize(report: dict[str, Any], server: Server) -> dict[str, Any]:
    """A step's figures and whether the server held the load."""
    results = report["results"]
    wait_ms = server.configured_wait_secs * 1000
    overhead = [r - wait_ms for call in results for r in call["responses_ms"]]
    greeting = [c["greeting_ms"] for c in results if c["greeting_ms"] is not None]
    lateness = [x for c in results for x in c["lateness_ms"]]
    replies = sum(len(c["responses_ms"]) for c in results)
    missed = sum(c["missed"] for c in results)
    errors = [c["error"] for c in results if c["error"]]
    # Backlog: replies later in each call slower than earlier ones.
    early, late = [], []
    for call in results:
        half = len(call["responses_ms"]) // 2
        early += call["responses_ms"][:half]
        late += call["responses_ms"][half:]
    judged = min(len(early), len(late)) >= BACKLOG_MIN_REPLIES
    backlog = statistics.median(late) - statistics.median(early) if judged else 0.0
    calls = report["calls"]
    step = {
        "calls": calls,
        "response_overhead_ms": percentiles(overhead),
        "response_ms": percentiles([r for c in results for r in c["responses_ms"]]),
        "greeting_ms": percentiles(greeting),
        "lateness_ms": percentiles(lateness),
        "greeting_lateness_ms": percentiles([c["greeting_lateness_ms"] for c in results]),
        "backlog_ms": round(backlog, 1),
        "replies": replies,
        "missed": missed,
        "errors": len(errors),
        "clears": sum(c["clears"] for c in results),
        "server_cpu": round(report["server_cpu"], 3),
        # Runnable but not running (the core was busy with someone else's work).
        "server_cpu_wait": round(report["server_cpu_wait"], 3),
        "cpu_per_call": round(report["server_cpu"] / calls, 4),
        "rss_mb": round(report["rss_peak_mb"], 1),
        "loadgen_cpu": round(report["loadgen_cpu"], 3),
        "loadgen_lag_ms": round(max((c["max_send_lag_ms"] for c in results), default=0.0), 1),
    }
    reasons = []
    p95 = step["response_overhead_ms"]["p95"]
    if p95 is None or p95 > server.latency_limit_ms:
        reasons.append(f"p95 reply overhead {p95} ms > {server.latency_limit_ms:g} ms")
    if errors:
        reasons.append(f"{len(errors)} calls failed ({errors[0]})")
    if missed > MISSED_LIMIT * max(replies + missed, 1):
        reasons.append(f"{missed} replies missed")
    late_p95 = step["lateness_ms"]["p95"]
    if late_p95 is not None and late_p95 > LATENESS_LIMIT_MS:
        reasons.append(f"bot audio {late_p95} ms behind real time (p95)")
    if backlog > BACKLOG_LIMIT_MS:
        reasons.append(f"replies slowed by {backlog:.0f} ms during the step (backlog)")
    step["held"] = not reasons
    step["why_not"] = "; ".join(reasons)
    return step


def memory_per_call(steps: list[dict[str, Any]]) -> float | None:
    """MB each additional call costs: the slope of peak RSS against N as N went up.

    Only the ascending steps count: a process keeps the memory a larger step took.
    """
    points = [(s["calls"], s["rss_mb"]) for s in steps if s["held"] and s["phase"] == "ascending"]
    if len({n for n, _ in points}) < 2:
        return None
    n, rss = np.array(points, dtype=float).T
    return round(float(np.polyfit(n, rss, 1)[0]), 2)


# -- The run ----------------------------------------------------------------------


def measure(server: Server, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Step one server's load up to its capacity; then half capacity and a burst."""
    print(f"== {server.name}", flush=True)
    steps: list[dict[str, Any]] = []
    with running_server(server, plan.server_core, workdir) as (pid, port):
        idle_rss = rss_mb(pid)
        if plan.warmup_secs:
            run_load(port, pid, 1, plan.warmup_secs, None, plan, workdir)

        def step(
            calls: int, phase: str, secs: float = plan.step_secs, ramp: float | None = None
        ) -> dict[str, Any]:
            if phase != "ascending" or calls != server.steps[0]:
                time.sleep(1.5)  # let the previous calls' pipelines wind down
            summary = summarize(run_load(port, pid, calls, secs, ramp, plan, workdir), server)
            summary["phase"] = phase
            overhead = summary["response_overhead_ms"]
            print(
                f"  N={calls:4d}  overhead p50 {overhead['p50']} p95 {overhead['p95']} ms  "
                f"greeting p95 {summary['greeting_ms']['p95']} ms  "
                f"cpu {summary['server_cpu']:.2f} (waited {summary['server_cpu_wait']:.2f})  "
                f"rss {summary['rss_mb']:.0f} MB  "
                f"(loadgen cpu {summary['loadgen_cpu']:.2f}, lag {summary['loadgen_lag_ms']} ms)  "
                f"{'ok' if summary['held'] else 'FELL BEHIND: ' + summary['why_not']}",
                flush=True,
            )
            return summary

        held, failed = 0, None
        for calls in server.steps:
            summary = step(calls, "ascending")
            steps.append(summary)
            if not summary["held"]:
                failed = calls
                break
            held = calls
        for _ in range(plan.bisect):
            if failed is None or failed - held <= max(2, held // 8):
                break
            calls = (held + failed) // 2
            summary = step(calls, "bisect")
            steps.append(summary)
            if summary["held"]:
                held = calls
            else:
                failed = calls
        half = step(max(1, held // 2), "half") if held and plan.mode != "smoke" else None
        burst = None
        if server.burst:
            burst = step(plan.burst_calls, "burst", secs=plan.burst_secs, ramp=1.0)
    steps.sort(key=lambda s: s["calls"])
    at_capacity = next((s for s in steps if s["calls"] == held), None)
    return {
        "calls_per_core": held,
        "capacity_limited_by": next((s["why_not"] for s in steps if s["calls"] == failed), None)
        if failed
        else "the largest step held",
        "latency_limit_ms": server.latency_limit_ms,
        "configured_wait_ms": server.configured_wait_secs * 1000,
        "at_half_capacity": half,
        "at_capacity": at_capacity,
        "greeting_burst": burst
        and {
            "calls": plan.burst_calls,
            "within_secs": 1.0,
            "greeting_ms": burst["greeting_ms"],
            "errors": burst["errors"],
        },
        "cpu_per_call": at_capacity["cpu_per_call"] if at_capacity else None,
        "idle_rss_mb": round(idle_rss, 1),
        "memory_mb_per_call": memory_per_call(steps),
        "steps": steps,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import pipecat

    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "pipecat": getattr(pipecat, "__version__", "?"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, rounded, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Switchboard against the baseline: the headline."""
    sb, bl = results["switchboard"], results["baseline"]
    matched = max(
        (
            s["calls"]
            for s in bl["steps"]
            if s["held"] and s["calls"] in {t["calls"] for t in sb["steps"]}
        ),
        default=None,
    )

    return {
        "capacity": ratio(sb["calls_per_core"], bl["calls_per_core"]),
        "capacity_vs_smart_turn": ratio(
            sb["calls_per_core"], results.get("baseline_smart_turn", {}).get("calls_per_core")
        ),
        "matched_calls": matched,
        "response_overhead_p95_at_matched_calls": ratio(
            report.p95(report.step_at(sb, matched), "response_overhead_ms"),
            report.p95(report.step_at(bl, matched), "response_overhead_ms"),
        ),
        "response_overhead_p95_at_half_capacity": ratio(
            report.p95(sb["at_half_capacity"], "response_overhead_ms"),
            report.p95(bl["at_half_capacity"], "response_overhead_ms"),
        ),
        "greeting_burst_p95": ratio(
            (sb["greeting_burst"] or {}).get("greeting_ms", {}).get("p95"),
            (bl["greeting_burst"] or {}).get("greeting_ms", {}).get("p95"),
        ),
        "cpu_per_call": ratio(sb["cpu_per_call"], bl["cpu_per_call"]),
        "memory_per_call": ratio(sb["memory_mb_per_call"], bl["memory_mb_per_call"]),
    }


def main(argv: list[str] | None = None) -> None:
    """Run every server's steps and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mode = "quick" if os.environ.get("BENCH_QUICK", "") not in ("", "0") else "full"
    parser.add_argument("--mode", choices=MODES, default=default_mode)
    parser.add_argument("--servers", default="", help="comma-separated subset to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    args = parser.parse_args(argv)
    only = [s for s in args.servers.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        the_plan = plan(args.mode, workdir)
        audio = prepare_audio(workdir)
        results: dict[str, Any] = {
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": args.mode,
            "machine": machine(),
            "method": {
                "server_core": the_plan.server_core,
                "loadgen_core": the_plan.loadgen_core,
                "step_secs": the_plan.step_secs,
                "latency_limit_ms": LATENCY_LIMIT_MS,
                "lateness_limit_ms": LATENESS_LIMIT_MS,
                "backlog_limit_ms": BACKLOG_LIMIT_MS,
                "vad_stop_secs": VAD_STOP_SECS,
                "user_pause_secs": USER_PAUSE_SECS,
                **audio,
            },
        }
        for server in the_plan.servers:
            if only and server.name not in only:
                continue
            try:
                results[server.name] = measure(server, the_plan, workdir)
            except RuntimeError:
                log = workdir / f"{server.name}.log"
                if log.exists():
                    print(log.read_text()[-3000:], file=sys.stderr)
                raise
    if results.get("switchboard") and results.get("baseline"):
        results["ratio"] = ratios(results)
    results["elapsed_secs"] = round(time.monotonic() - began)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    report.plot(results, args.out / report.PLOT_NAME)
    if args.out.resolve() == RESULTS.resolve():
        report.update_readme(results, ROOT / "README.md")
    print(json.dumps(results.get("ratio", {}), indent=2))
    print(f"wrote {args.out / 'latest.json'} in {results['elapsed_secs']} s")


if __name__ == "__main__":
    main()
