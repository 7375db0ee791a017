"""What a benchmark run measures: the servers under test, their steps, and the limits.

The limits say when a server no longer holds its load (see `bench.judge`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bot import USER_PAUSE_SECS
from settings import Settings

LATENCY_LIMIT_MS = 250.0
# The bot's audio may arrive this much behind real time before the caller hears a gap.
LATENESS_LIMIT_MS = 100.0
# Replies in the second half of a step slower than in the first by this much: backlog.
BACKLOG_LIMIT_MS = 100.0
# Fewer replies than this in either half, and the two medians say nothing (one
# offline call, whose replies vary with Whisper's work by as much as the limit).
BACKLOG_MIN_REPLIES = 4
MISSED_LIMIT = 0.02
# The offline voice (Whisper + Piper in the process) is judged against 1 s, and its
# reply at one call against this target.
OFFLINE_LIMIT_MS = 1000.0
OFFLINE_TARGET_MS = 600.0
VAD_STOP_SECS = float(Settings.model_fields["vad_stop_secs"].default)  # Pipecat's default too
BURST_CALLS = 20
# Memory per added call as an operator sees it: the whole process tree's RSS
# while this many calls are up, and then this many (`memory_mb_per_added_call`).
MEMORY_CALLS = (10, 30)


@dataclass(frozen=True)
class Server:
    """A server under test and the waits its configuration puts in every reply."""

    name: str
    command: list[str]
    configured_wait_secs: float
    latency_limit_ms: float = LATENCY_LIMIT_MS
    steps: tuple[int, ...] = ()
    burst: bool = True  # also start BURST_CALLS calls within a second
    # More than one: WORKERS processes on every core, the load generator among them.
    workers: int = 1
    # One process on every core, the load generator among them (the offline voice's
    # models run in threads: what one machine holds).
    every_core: bool = False
    # Also measure memory per added call from MEMORY_CALLS[0] to MEMORY_CALLS[1] calls.
    memory: bool = False

    @property
    def spans_cores(self) -> bool:
        """Whether the server runs on every core rather than pinned to one."""
        return self.workers > 1 or self.every_core


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
    cores: tuple[int, ...] = ()
    memory_calls: tuple[int, int] = MEMORY_CALLS
    memory_secs: float = 20.0


MODES = ("full", "quick", "smoke")


def plan(mode: str, workdir: Path, workers: bool = False, events: bool = False) -> Plan:
    """The servers and steps for a full, quick, or smoke (CI: tiny N, no timing) run.

    With `events`, Switchboard also runs with call events on (`switchboard_events`).

    Args:
        mode: `full`, `quick` or `smoke`.
        workdir: Where the run's audio and logs go.
        workers: Measure Switchboard with one worker against one per core instead.
        events: Also measure Switchboard with call events on.
    """
    cores = sorted(os.sched_getaffinity(0))
    server_core, loadgen_core = cores[0], cores[-1]
    clip = str(workdir / "clip.wav")
    data = ["--data", str(workdir)]
    python = sys.executable
    both = VAD_STOP_SECS + USER_PAUSE_SECS
    steps_by_mode: dict[str, dict[str, tuple[int, ...]]] = {
        "full": {
            "switchboard": (4, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192),
            "switchboard_recording": (16, 32, 48, 64, 80, 96, 112, 128, 160),
            "baseline": (2, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64),
            "baseline_tuned": (2, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64),
            "baseline_smart_turn": (1, 2, 4, 6, 8, 12, 16),
            "offline": (1, 2, 3, 4, 6, 8, 10),
            "offline_machine": (1, 2, 3, 4, 6, 8, 10, 12),
        },
        "quick": {
            "switchboard": (4, 16, 32, 48, 64, 80, 96, 128, 160),
            "switchboard_recording": (16, 48, 80, 128),
            "baseline": (4, 8, 12, 16, 20, 24, 32, 40, 48, 64),
            "baseline_tuned": (4, 8, 12, 16, 20, 24, 32, 40, 48, 64),
            "baseline_smart_turn": (1, 2, 4, 8, 12, 16),
            "offline": (1, 2, 4, 6),
            "offline_machine": (1, 2, 4, 6, 8),
        },
        "smoke": {
            "switchboard": (2,),
            "switchboard_recording": (2,),
            "baseline": (2,),
            "baseline_tuned": (2,),
        },
    }
    steps = steps_by_mode[mode]
    if events:
        steps["switchboard_events"] = steps["switchboard"]
    bench_profile = [python, "-m", "bench.switchboard", "--profile", "bench", "--clip", clip, *data]
    baseline = [python, "-m", "bench.baseline", "--pause", str(USER_PAUSE_SECS), "--clip", clip]
    offline = [python, "-m", "bench.switchboard", "--profile", "offline", *data]
    servers = [
        Server("switchboard", bench_profile, both, memory=True),
        Server("switchboard_events", [*bench_profile, "--events"], both),
        # The same, recording every call: what RECORDING=local costs a reply.
        Server("switchboard_recording", [*bench_profile, "--record"], both),
        Server("baseline", baseline, both, memory=True),
        # The same, with every switch Switchboard also turns off: what the fast path earns.
        Server("baseline_tuned", [*baseline, "--tuned"], both, memory=True),
        Server(
            "baseline_smart_turn", [python, "-m", "bench.baseline", "--clip", clip], VAD_STOP_SECS
        ),
        # Whisper transcribing and Piper speaking count as overhead here: allow for them.
        Server("offline", offline, both, latency_limit_ms=OFFLINE_LIMIT_MS, burst=False),
        # The same process on every core: how many offline calls one machine holds.
        Server(
            "offline_machine",
            offline,
            both,
            latency_limit_ms=OFFLINE_LIMIT_MS,
            burst=False,
            every_core=True,
        ),
    ]
    if workers:
        servers, steps = _workers_servers(mode, len(cores), servers[0], steps)
    return Plan(
        mode=mode,
        step_secs={"full": 30.0, "quick": 16.0, "smoke": 8.0}[mode],
        warmup_secs=0.0 if mode == "smoke" else 6.0,
        bisect={"full": 2, "quick": 1, "smoke": 0}[mode],
        burst_calls=3 if mode == "smoke" else BURST_CALLS,
        burst_secs=4.0 if mode == "smoke" else 8.0,
        server_core=server_core,
        loadgen_core=loadgen_core,
        servers=[dataclasses.replace(s, steps=steps[s.name]) for s in servers if s.name in steps],
        cores=tuple(cores),
        memory_calls=(1, 2) if mode == "smoke" else MEMORY_CALLS,
        memory_secs={"full": 20.0, "quick": 12.0, "smoke": 3.0}[mode],
    )


def _workers_servers(
    mode: str, cores: int, switchboard: Server, steps: dict[str, tuple[int, ...]]
) -> tuple[list[Server], dict[str, tuple[int, ...]]]:
    """Switchboard as one process on one core, and as one worker per core (`WORKERS`)."""
    many = dataclasses.replace(
        switchboard,
        name="switchboard_workers",
        command=[*switchboard.command, "--workers", str(cores)],
        workers=cores,
        burst=False,
        memory=False,
    )
    one = dataclasses.replace(switchboard, burst=False, memory=False)
    single = steps["switchboard"]
    # The same steps, and as many again beyond them: the machine holds more.
    more = tuple(sorted({*single, *(n * cores for n in single[-4:])}))
    return [one, many], {"switchboard": single, "switchboard_workers": more}
