"""The benchmark's results for people: a table for the README and a plot.

    python -m bench.report          # README section and plot again, from latest.json

`bench.run` calls both after a run that writes to `bench/results/`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The README's benchmark table lives between these lines.
BEGIN = "<!-- bench:begin (written by bench/report.py) -->"
END = "<!-- bench:end -->"
# And the table of `bench.run --workers` (results in WORKERS_RESULTS) between these.
WORKERS = (
    "<!-- bench-workers:begin (written by bench/report.py) -->",
    "<!-- bench-workers:end -->",
)
WORKERS_RESULTS = "workers.json"
PLOT_NAME = "latency_vs_calls.png"
SERVERS = {
    "switchboard": "Switchboard",
    "switchboard_events": "Switchboard, events on",
    "switchboard_recording": "Switchboard, RECORDING=local",
    "baseline": "Stock Pipecat",
    "baseline_tuned": "Stock Pipecat, tuned",
    "baseline_smart_turn": "Stock Pipecat, Smart Turn",
    "offline": "Switchboard, Whisper + Piper",
    "offline_machine": "Switchboard, Whisper + Piper, every core",
}
# The headline columns: Switchboard against each stock Pipecat, by the ratios' key suffix.
AGAINST = {"": "Switchboard / stock", "_vs_tuned": "Switchboard / tuned"}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:g}×"


def p95(step: dict[str, Any] | None, key: str) -> float | None:
    """The p95 of the figure `key` in `step`, if there is a step."""
    return step[key]["p95"] if step else None


def step_at(entry: dict[str, Any], calls: int | None) -> dict[str, Any] | None:
    """One server's step at `calls` concurrent calls, if it ran one."""
    return next((s for s in entry["steps"] if s["calls"] == calls), None)


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table, one column per server, and the machine."""
    names = [n for n in SERVERS if results.get(n)]
    ratio = results.get("ratio", {})
    matched = ratio.get("matched_calls")
    against = [suffix for suffix in AGAINST if f"capacity{suffix}" in ratio]

    def row(label: str, cell: Any, key: str = "", bold: bool = False) -> str:
        cells = [cell(results[n]) for n in names]
        headlines = [_times(ratio.get(f"{key}{suffix}")) if key else "" for suffix in against]
        if bold:
            headlines = [f"**{h}**" for h in headlines]
        return f"| {label} | " + " | ".join([*cells, *headlines]) + " |"

    def capacity(entry: dict[str, Any]) -> str:
        cores = len(results["method"].get("cores", ()))
        where = f" on {cores} cores" if entry is results.get("offline_machine") else ""
        return f"**{entry['calls_per_core']}**{where}"

    def half(entry: dict[str, Any]) -> str:
        step = entry["at_half_capacity"]
        return f"{_ms(p95(step, 'response_overhead_ms'))} at {step['calls']}" if step else "–"

    def burst(entry: dict[str, Any]) -> str:
        b = entry.get("greeting_burst")
        return _ms(b["greeting_ms"]["p95"]) if b else "–"

    def slope(entry: dict[str, Any]) -> str:
        mb = entry.get("memory_mb_per_call")
        return "–" if mb is None else f"{mb:.1f} MB"

    def added(entry: dict[str, Any]) -> str:
        memory = entry.get("memory_per_added_call")
        return "–" if not memory else f"{memory['mb_per_added_call']:.1f} MB"

    def cpu(entry: dict[str, Any]) -> str:
        share = entry.get("cpu_per_call")
        return "–" if share is None else f"{share * 100:.1f} %"

    few, many = results["method"].get("memory_calls", (10, 30))
    lines = [
        "| | " + " | ".join([*(SERVERS[n] for n in names), *(AGAINST[a] for a in against)]) + " |",
        "|---|" + "---:|" * (len(names) + len(against)),
        row("Calls per core", capacity, "capacity", bold=True),
        row("Reply overhead p95, half capacity", half, "response_overhead_p95_at_half_capacity"),
        row(
            f"Reply overhead p95, {matched} calls" if matched else "Reply overhead p95, same calls",
            lambda e: _ms(p95(step_at(e, matched), "response_overhead_ms")),
            "response_overhead_p95_at_matched_calls",
        ),
        row("Greeting p95, 20 calls started within 1 s", burst, "greeting_burst_p95"),
        row("CPU per call at capacity (one core)", cpu, "cpu_per_call"),
        row("Memory per added call (peak RSS over the steps)", slope, "memory_per_call"),
        row(
            f"Memory per added call (process tree, {few} → {many} calls)",
            added,
            "memory_per_added_call",
        ),
        row("Reply overhead limit", lambda e: _ms(e["latency_limit_ms"])),
    ]
    m = results["machine"]
    shared = " (the one on every core shares them with it)" if "offline_machine" in names else ""
    measured = (
        f"Measured {results['generated']} ({results['mode']} mode, "
        f"{results['elapsed_secs'] // 60} min) on {m['cpu_model']}, {m['cores']} cores, "
        f"{m['memory_gb']:g} GB, Python {m['python']}, Pipecat {m['pipecat']}; "
        f"each server pinned to one core, the load generator to another{shared}."
    )
    return "\n".join([*lines, *_offline(ratio), *_stages(results), "", measured])


def _offline(ratio: dict[str, Any]) -> list[str]:
    """The offline voice against its targets, in a sentence under the table."""
    if "offline_one_call_p95_ms" not in ratio:
        return []
    said = (
        f"Offline voice (Whisper tiny.en + Piper in the process): p95 reply overhead "
        f"{_ms(ratio['offline_one_call_p95_ms'])} at one call (target "
        f"{_ms(ratio['offline_one_call_target_ms'])}); {ratio['offline_calls_per_core']} "
        "call(s) held on one core"
    )
    if "offline_calls_per_machine" in ratio:
        said += (
            f", {ratio['offline_calls_per_machine']} on the whole machine "
            f"({ratio['offline_machine_cores']} cores)"
        )
    return ["", said + f", each within {_ms(ratio.get('offline_machine_limit_ms', 1000.0))}."]


def _stages(results: dict[str, Any]) -> list[str]:
    """Switchboard's replies stage by stage at half capacity, when the server measured them."""
    step = (results.get("switchboard") or {}).get("at_half_capacity") or {}
    stages = step.get("stages")
    if not stages:
        return []
    lines = [
        "",
        f"Switchboard's replies at half capacity ({step['calls']} calls), from the caller's "
        "end of speech to each stage, as the server measured them:",
        "",
        "| Stage | Replies | Mean | p50 | p95 |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage, stats in stages.items():
        lines.append(
            f"| {stage} | {stats['replies']} | {_ms(stats['mean_ms'])} | "
            f"{_ms(stats['p50_ms'])} | {_ms(stats['p95_ms'])} |"
        )
    return lines


def workers_ratio(results: dict[str, Any]) -> dict[str, Any]:
    """Calls the machine held with a worker per core, against one process on one core."""
    one, many = results.get("switchboard"), results.get("switchboard_workers")
    if not one or not many:
        return {}
    return {"capacity": _ratio(many["calls_per_core"], one["calls_per_core"])}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def workers_table(results: dict[str, Any]) -> str:
    """`bench.run --workers` as a Markdown table: one worker, then one per core."""
    one, many = results["switchboard"], results["switchboard_workers"]
    cores = len(results["method"]["cores"])

    def at_capacity(entry: dict[str, Any], key: str) -> str:
        step = entry.get("at_capacity")
        return _ms(p95(step, key)) if step else "–"

    def cpu(entry: dict[str, Any]) -> str:
        step = entry.get("at_capacity")
        return f"{step['server_cpu'] * 100:.0f} %" if step else "–"

    def loadgen(entry: dict[str, Any]) -> str:
        step = entry.get("at_capacity")
        return f"{step['loadgen_cpu'] * 100:.0f} %" if step else "–"

    def waited(entry: dict[str, Any]) -> str:
        step = entry.get("at_capacity")
        return f"{step['server_cpu_wait'] * 100:.0f} %" if step else "–"

    rows = [
        ("Calls held", lambda e: f"**{e['calls_per_core']}**"),
        ("Reply overhead p95 at that load", lambda e: at_capacity(e, "response_overhead_ms")),
        ("Server CPU at that load (100 % = one core)", cpu),
        ("Load generator CPU at that load", loadgen),
        ("Server runnable but waiting for a core (load generator, other work)", waited),
    ]
    lines = [
        f"| | 1 worker, 1 core | WORKERS={cores}, {cores} cores shared with the load generator "
        "| ratio |",
        "|---|---:|---:|---:|",
    ]
    ratio = f"**{_times(results['ratio'].get('capacity'))}**"
    for label, cell in rows:
        headline = ratio if label == "Calls held" else ""
        lines.append(f"| {label} | {cell(one)} | {cell(many)} | {headline} |")
    m = results["machine"]
    measured = (
        f"Measured {results['generated']} ({results['mode']} mode, "
        f"{results['elapsed_secs'] // 60} min) on {m['cpu_model']}, {m['cores']} cores; the "
        "load generator runs on the same machine (on the other core for 1 worker, "
        "sharing every core with the workers for WORKERS)."
    )
    return "\n".join([*lines, "", measured])


def update_readme(
    results: dict[str, Any],
    readme: Path,
    render: Callable[[dict[str, Any]], str] | None = None,
    markers: tuple[str, str] = (BEGIN, END),
) -> None:
    """Put `render(results)` (default: `table`) between the README's benchmark markers."""
    render = render or table
    first, last = markers
    text = readme.read_text()
    begin, end = text.find(first), text.find(last)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} has no {first} … {last} section")
    readme.write_text(text[: begin + len(first)] + "\n" + render(results) + "\n" + text[end:])


def plot(results: dict[str, Any], path: Path) -> None:
    """Reply overhead (p50 and p95) and server CPU against concurrent calls, per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, cpu) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, label in SERVERS.items():
        entry = results.get(name)
        if not entry:
            continue
        steps = [s for s in entry["steps"] if s["response_overhead_ms"]["p95"] is not None]
        calls = [s["calls"] for s in steps]
        (line,) = latency.plot(
            calls, [s["response_overhead_ms"]["p95"] for s in steps], "o-", label=f"{label} p95"
        )
        latency.plot(
            calls,
            [s["response_overhead_ms"]["p50"] for s in steps],
            "--",
            color=line.get_color(),
            alpha=0.6,
            label=f"{label} p50",
        )
        cpu.plot(calls, [s["server_cpu"] * 100 for s in steps], "o-", label=label)
    latency.axhline(
        results["method"]["latency_limit_ms"], color="grey", linestyle=":", label="limit"
    )
    latency.set(
        xlabel="concurrent calls (server on one core)",
        ylabel="reply overhead, ms",
        title="Reply latency beyond VAD stop + turn pause",
        ylim=(0, 1000),
    )
    latency.legend(fontsize=7)
    cpu.set(xlabel="concurrent calls", ylabel="server CPU, % of one core", title="Server CPU")
    cpu.legend(fontsize=7)
    m = results["machine"]
    figure.suptitle(f"{m['cpu_model']}, {m['cores']} cores - {results['generated']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    """Render the README sections and the plot from the results files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    results = json.loads((args.results / "latest.json").read_text())
    plot(results, args.results / PLOT_NAME)
    update_readme(results, args.readme)
    if (workers := args.results / WORKERS_RESULTS).exists():
        update_readme(json.loads(workers.read_text()), args.readme, workers_table, WORKERS)


if __name__ == "__main__":
    main()
