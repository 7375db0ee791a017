"""Judging a benchmark run: each step's figures, whether the server held, and the ratios."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from bench import report
from bench.plan import (
    BACKLOG_LIMIT_MS,
    BACKLOG_MIN_REPLIES,
    LATENESS_LIMIT_MS,
    MISSED_LIMIT,
    OFFLINE_TARGET_MS,
    Server,
)


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
        "rss_steady_mb": round(report["rss_steady_mb"], 1),
        "loadgen_cpu": round(report["loadgen_cpu"], 3),
        "loadgen_lag_ms": round(max((c["max_send_lag_ms"] for c in results), default=0.0), 1),
        # The server's own per-stage breakdown of these replies, where it publishes one.
        "stages": report.get("stages"),
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


def memory_per_added_call(few: dict[str, Any], many: dict[str, Any]) -> dict[str, Any]:
    """MB each added call costs, as an operator sees it: the whole process tree's RSS
    while `few` calls were up, against while `many` were (the steady half of each step)."""
    added = many["calls"] - few["calls"]
    return {
        "calls": [few["calls"], many["calls"]],
        "rss_mb": [few["rss_steady_mb"], many["rss_steady_mb"]],
        "mb_per_added_call": round((many["rss_steady_mb"] - few["rss_steady_mb"]) / added, 2),
    }


def memory_per_call(steps: list[dict[str, Any]]) -> float | None:
    """MB each additional call costs: the slope of peak RSS against N as N went up.

    Only the ascending steps count: a process keeps the memory a larger step took.
    """
    points = [(s["calls"], s["rss_mb"]) for s in steps if s["held"] and s["phase"] == "ascending"]
    if len({n for n, _ in points}) < 2:
        return None
    n, rss = np.array(points, dtype=float).T
    return round(float(np.polyfit(n, rss, 1)[0]), 2)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, rounded, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Everything the run compared: Switchboard against stock Pipecat (as its example is
    written, and tuned), what recording costs, and the offline voice against its targets."""
    compared: dict[str, Any] = {}
    if results.get("switchboard") and results.get("baseline"):
        compared.update(against_stock(results))
    if results.get("switchboard") and results.get("baseline_tuned"):
        compared.update(against_stock(results, "baseline_tuned", "_vs_tuned"))
    return {**compared, **recording_cost(results), **offline_figures(results)}


def against_stock(
    results: dict[str, Any], baseline: str = "baseline", suffix: str = ""
) -> dict[str, Any]:
    """Switchboard against one stock Pipecat server: the headline (keys end in `suffix`)."""
    sb, bl = results["switchboard"], results[baseline]
    matched = max(
        (
            s["calls"]
            for s in bl["steps"]
            if s["held"] and s["calls"] in {t["calls"] for t in sb["steps"]}
        ),
        default=None,
    )

    compared = {
        "capacity": ratio(sb["calls_per_core"], bl["calls_per_core"]),
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
        "memory_per_added_call": ratio(_added(sb), _added(bl)),
    }
    if not suffix:
        smart_turn = results.get("baseline_smart_turn") or {}
        compared["capacity_vs_smart_turn"] = ratio(
            sb["calls_per_core"], smart_turn.get("calls_per_core")
        )
    return {f"{key}{suffix}": value for key, value in compared.items()}


def _added(entry: dict[str, Any]) -> float | None:
    memory = entry.get("memory_per_added_call")
    return memory["mb_per_added_call"] if memory else None


def offline_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The offline voice (Whisper + Piper) against its targets: one call's reply, calls held."""
    one, machine = results.get("offline"), results.get("offline_machine")
    figures: dict[str, Any] = {}
    if one:
        p95_ms = report.p95(report.step_at(one, 1), "response_overhead_ms")
        figures.update(
            offline_one_call_p95_ms=p95_ms,
            offline_one_call_target_ms=OFFLINE_TARGET_MS,
            offline_one_call_meets_target=p95_ms is not None and p95_ms <= OFFLINE_TARGET_MS,
            offline_calls_per_core=one["calls_per_core"],
        )
    if machine:
        figures.update(
            offline_calls_per_machine=machine["calls_per_core"],
            offline_machine_cores=len(results["method"]["cores"]),
            offline_machine_limit_ms=machine["latency_limit_ms"],
        )
    return figures


def recording_cost(results: dict[str, Any]) -> dict[str, Any]:
    """Switchboard recording every call (RECORDING=local) against Switchboard not recording.

    Replies are compared at the same number of calls: the largest step both held
    at up to half of Switchboard's capacity, where latency is not yet the limit's.
    """
    sb, rec = results.get("switchboard"), results.get("switchboard_recording")
    if not sb or not rec:
        return {}
    held = {s["calls"] for s in sb["steps"] if s["held"]} & {
        s["calls"] for s in rec["steps"] if s["held"]
    }
    moderate = {calls for calls in held if calls <= max(1, sb["calls_per_core"] // 2)}
    calls = max(moderate or held, default=None)
    return {
        "recording_compared_at_calls": calls,
        "recording_response_overhead_p95": ratio(
            report.p95(report.step_at(rec, calls), "response_overhead_ms"),
            report.p95(report.step_at(sb, calls), "response_overhead_ms"),
        ),
        "recording_response_overhead_median": ratio(
            (report.step_at(rec, calls) or {}).get("response_overhead_ms", {}).get("p50"),
            (report.step_at(sb, calls) or {}).get("response_overhead_ms", {}).get("p50"),
        ),
        "recording_capacity": ratio(rec["calls_per_core"], sb["calls_per_core"]),
        "recording_cpu_per_call": ratio(rec["cpu_per_call"], sb["cpu_per_call"]),
    }
