"""The benchmark: calls per core and reply latency, Switchboard against stock Pipecat.

    python -m bench.run                 # full: about 35 minutes
    BENCH_QUICK=1 python -m bench.run   # quick: about 15 minutes
    python -m bench.run --mode smoke --out /tmp/x   # CI: two calls, no timing judged
    python -m bench.run --workers       # one worker against one per core (WORKERS)

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

    switchboard            Switchboard with the instant bench services
    switchboard_events     the same with call events on (`--events`), to a receiver off-core
    switchboard_recording  the same recording every call (RECORDING=local)
    baseline               Pipecat's Twilio example, same services and turn pause
    baseline_tuned         the same with what Switchboard turns off also off (RTVI, …)
    baseline_smart_turn    the example verbatim: default turn strategy (Smart Turn v3)
    offline                Switchboard with the real offline stack (Whisper + Piper)
    offline_machine        the same on every core, the load generator among them

Switchboard and both stock servers also run 10 and then 30 calls on a fresh
server first: the process tree's RSS per added call, as an operator sees it.
Where the server publishes its replies stage by stage (`bench.stages`), each
step keeps that breakdown.

With `--workers`, the run measures instead Switchboard as one process on one
core against `WORKERS` = one per core, on every core: calls per machine. The
load generator then shares the cores with the workers (there are no others),
and its CPU is reported beside. Results go to `bench/results/workers.json`.

The server and the load generator run in a session of their own at nice -10
where allowed: on a shared machine, someone else's build otherwise sets the
capacity. Results go to `bench/results/latest.json` and
`bench/results/latency_vs_calls.png`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.judge import memory_per_added_call, memory_per_call, ratios, summarize
from bench.plan import (
    BACKLOG_LIMIT_MS,
    LATENCY_LIMIT_MS,
    LATENESS_LIMIT_MS,
    MODES,
    VAD_STOP_SECS,
    Plan,
    Server,
    plan,
)
from bench.processes import ROOT, rss_mb, run_load, running_server
from bot import USER_PAUSE_SECS

RESULTS = ROOT / "bench" / "results"

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


# -- The run ----------------------------------------------------------------------


def measure(server: Server, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Step one server's load up to its capacity; then half capacity and a burst."""
    print(f"== {server.name}", flush=True)
    steps: list[dict[str, Any]] = []
    with running_server(server, plan, workdir) as (pid, port):
        idle_rss = rss_mb(pid)
        if plan.warmup_secs:
            run_load(port, pid, 1, plan.warmup_secs, None, plan, workdir, server)
        first = True

        def step(
            calls: int, phase: str, secs: float = plan.step_secs, ramp: float | None = None
        ) -> dict[str, Any]:
            nonlocal first
            if not first:
                time.sleep(1.5)  # let the previous calls' pipelines wind down
            first = False
            load = run_load(port, pid, calls, secs, ramp, plan, workdir, server)
            summary = summarize(load, server)
            summary["phase"] = phase
            overhead = summary["response_overhead_ms"]
            print(
                f"  N={calls:4d}  overhead p50 {overhead['p50']} p95 {overhead['p95']} ms  "
                f"greeting p95 {summary['greeting_ms']['p95']} ms  "
                f"cpu {summary['server_cpu']:.2f} (waited {summary['server_cpu_wait']:.2f})  "
                f"rss {summary['rss_mb']:.0f} MB  "
                f"(loadgen cpu {summary['loadgen_cpu']:.2f}, lag {summary['loadgen_lag_ms']} ms)  "
                f"{verdict(summary)}",
                flush=True,
            )
            return summary

        memory = None
        if server.memory:  # on a fresh server, as an operator's first calls find it
            few, many = (
                step(calls, "memory", secs=plan.memory_secs) for calls in plan.memory_calls
            )
            memory = memory_per_added_call(few, many)
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
        "memory_per_added_call": memory,
        "steps": steps,
    }


def verdict(step: dict[str, Any]) -> str:
    """How a step went, for the progress lines."""
    if step["phase"] == "memory":
        return f"memory: {step['rss_steady_mb']:.0f} MB with every call up"
    return "ok" if step["held"] else "FELL BEHIND: " + step["why_not"]


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


def main(argv: list[str] | None = None) -> None:
    """Run every server's steps and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mode = "quick" if os.environ.get("BENCH_QUICK", "") not in ("", "0") else "full"
    parser.add_argument("--mode", choices=MODES, default=default_mode)
    parser.add_argument("--servers", default="", help="comma-separated subset to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    parser.add_argument(
        "--workers", action="store_true", help="one worker against one per core (WORKERS)"
    )
    parser.add_argument("--events", action="store_true", help="also Switchboard with events on")
    args = parser.parse_args(argv)
    only = [s for s in args.servers.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        the_plan = plan(args.mode, workdir, workers=args.workers, events=args.events)
        audio = prepare_audio(workdir)
        results: dict[str, Any] = {
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": args.mode,
            "machine": machine(),
            "method": {
                "server_core": the_plan.server_core,
                "loadgen_core": the_plan.loadgen_core,
                "cores": list(the_plan.cores),
                "step_secs": the_plan.step_secs,
                "memory_calls": list(the_plan.memory_calls),
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
    results["elapsed_secs"] = round(time.monotonic() - began)
    if args.workers:
        write_workers(results, args.out)
        return
    results["ratio"] = ratios(results)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    report.plot(results, args.out / report.PLOT_NAME)
    if args.out.resolve() == RESULTS.resolve():
        report.update_readme(results, ROOT / "README.md")
    print(json.dumps(results.get("ratio", {}), indent=2))
    print(f"wrote {args.out / 'latest.json'} in {results['elapsed_secs']} s")


def write_workers(results: dict[str, Any], out: Path) -> None:
    """The one-worker against every-core results, and their README table."""
    results["ratio"] = report.workers_ratio(results)
    (out / report.WORKERS_RESULTS).write_text(json.dumps(results, indent=2) + "\n")
    if out.resolve() == RESULTS.resolve():
        report.update_readme(results, ROOT / "README.md", report.workers_table, report.WORKERS)
    print(report.workers_table(results))
    print(f"wrote {out / report.WORKERS_RESULTS} in {results['elapsed_secs']} s")


if __name__ == "__main__":
    main()
