"""The benchmark runs end to end at tiny N, so it keeps working; no timing is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_a_smoke_run_measures_both_servers_and_writes_results(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--mode", "smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())

    assert results["machine"]["cores"] >= 1
    assert results["machine"]["cpu_model"]
    assert finite(results["ratio"]["capacity"])
    assert finite(results["ratio"]["capacity_vs_tuned"])
    assert finite(results["ratio"]["cpu_per_call_vs_tuned"])
    assert results["ratio"]["recording_compared_at_calls"] == 2
    assert finite(results["ratio"]["recording_response_overhead_p95"])
    # Memory per added call as an operator sees it: the process tree with 1, then 2 calls up.
    for name in ("switchboard", "baseline", "baseline_tuned"):
        memory = results[name]["memory_per_added_call"]
        assert memory["calls"] == [1, 2], name
        assert all(finite(mb) and mb > 0 for mb in memory["rss_mb"]), (name, memory)
        assert finite(memory["mb_per_added_call"]), (name, memory)
    assert finite(results["ratio"]["memory_per_added_call"])
    for name in ("switchboard", "switchboard_recording", "baseline", "baseline_tuned"):
        server = results[name]
        assert finite(server["calls_per_core"]), name
        [step] = [s for s in server["steps"] if s["phase"] == "ascending"]
        assert step["errors"] == 0, (name, step)
        assert step["greeting_ms"]["n"] == step["calls"], (name, step)
        assert step["replies"] >= 1, (name, step)  # callers spoke and the bot answered
        for key in ("p50", "p95", "p99"):
            assert finite(step["greeting_ms"][key]), (name, key)
        assert finite(step["server_cpu"]) and step["server_cpu"] > 0, name
        assert finite(step["rss_mb"]) and step["rss_mb"] > 0, name
        assert "stages" in step  # the server's own breakdown where it has one, else None
        burst = server["greeting_burst"]
        assert burst["errors"] == 0 and finite(burst["greeting_ms"]["p95"]), name
    assert (tmp_path / "latency_vs_calls.png").stat().st_size > 0

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{report.BEGIN}\nold table\n{report.END}\n\nAfter.\n")
    report.update_readme(results, readme)
    text = readme.read_text()
    assert "old table" not in text and text.endswith(f"{report.END}\n\nAfter.\n")
    header = next(line for line in text.splitlines() if line.startswith("| |"))
    assert "Stock Pipecat, tuned" in header and "Switchboard / tuned" in header, header
    capacity_row = next(line for line in text.splitlines() if line.startswith("| Calls per core"))
    sb, bl = results["switchboard"]["calls_per_core"], results["baseline"]["calls_per_core"]
    assert f"**{sb}**" in capacity_row and f"**{bl}**" in capacity_row
    assert any(
        line.startswith("| Memory per added call (process tree") for line in text.splitlines()
    )
    assert results["machine"]["cpu_model"] in text


def test_the_readme_shows_the_committed_results() -> None:
    results = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    assert results["mode"] in ("full", "quick")
    assert report.table(results) in (ROOT / "README.md").read_text()
    assert (ROOT / "bench" / "results" / report.PLOT_NAME).stat().st_size > 0
