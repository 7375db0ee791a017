"""The benchmark's results for people: a table for the README and a plot.

    python -m bench.report          # README section and plot again, from latest.json

`bench.run` calls both after a run that writes to `bench/results/`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The README's benchmark table lives between these lines.
BEGIN = "<!-- bench:begin (written by bench/report.py) -->"
END = "<!-- bench:end -->"
PLOT_NAME = "latency_vs_calls.png"
SERVERS = {
    "switchboard": "Switchboard",
    "switchboard_recording": "Switchboard, RECORDING=local",
    "baseline": "Stock Pipecat",
    "baseline_smart_turn": "Stock Pipecat, Smart Turn",
    "offline": "Switchboard, Whisper + Piper",
}


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

    def row(label: str, cell: Any, headline: str = "") -> str:
        cells = [cell(results[n]) for n in names]
        return f"| {label} | " + " | ".join(cells) + f" | {headline} |"

    def half(entry: dict[str, Any]) -> str:
        step = entry["at_half_capacity"]
        return f"{_ms(p95(step, 'response_overhead_ms'))} at {step['calls']}" if step else "–"

    def burst(entry: dict[str, Any]) -> str:
        b = entry.get("greeting_burst")
        return _ms(b["greeting_ms"]["p95"]) if b else "–"

    def memory(entry: dict[str, Any]) -> str:
        mb = entry.get("memory_mb_per_call")
        return "–" if mb is None else f"{mb:.1f} MB"

    def cpu(entry: dict[str, Any]) -> str:
        share = entry.get("cpu_per_call")
        return "–" if share is None else f"{share * 100:.1f} %"

    lines = [
        "| | " + " | ".join(SERVERS[n] for n in names) + " | Switchboard / stock |",
        "|---|" + "---:|" * len(names) + "---:|",
        row(
            "Calls per core",
            lambda e: f"**{e['calls_per_core']}**",
            f"**{_times(ratio.get('capacity'))}**",
        ),
        row(
            "Reply overhead p95, half capacity",
            half,
            _times(ratio.get("response_overhead_p95_at_half_capacity")),
        ),
        row(
            f"Reply overhead p95, {matched} calls" if matched else "Reply overhead p95, same calls",
            lambda e: _ms(p95(step_at(e, matched), "response_overhead_ms")),
            _times(ratio.get("response_overhead_p95_at_matched_calls")),
        ),
        row(
            "Greeting p95, 20 calls started within 1 s",
            burst,
            _times(ratio.get("greeting_burst_p95")),
        ),
        row("CPU per call at capacity (one core)", cpu, _times(ratio.get("cpu_per_call"))),
        row("Memory per added call", memory, _times(ratio.get("memory_per_call"))),
        row("Reply overhead limit", lambda e: _ms(e["latency_limit_ms"])),
    ]
    m = results["machine"]
    measured = (
        f"Measured {results['generated']} ({results['mode']} mode, "
        f"{results['elapsed_secs'] // 60} min) on {m['cpu_model']}, {m['cores']} cores, "
        f"{m['memory_gb']:g} GB, Python {m['python']}, Pipecat {m['pipecat']}; "
        f"each server pinned to one core, the load generator to another."
    )
    return "\n".join([*lines, "", measured])


def update_readme(results: dict[str, Any], readme: Path) -> None:
    """Put `table(results)` between the README's benchmark markers."""
    text = readme.read_text()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} has no {BEGIN} … {END} section")
    readme.write_text(text[: begin + len(BEGIN)] + "\n" + table(results) + "\n" + text[end:])


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
    """Render the README section and the plot from a results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    results = json.loads((args.results / "latest.json").read_text())
    plot(results, args.results / PLOT_NAME)
    update_readme(results, args.readme)


if __name__ == "__main__":
    main()
