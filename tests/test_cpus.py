"""CPUs a process may use: affinity, the cgroup quota of a container, and macOS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops import cpus


def test_a_cgroup_v2_quota_caps_the_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker run --cpus 1.5
    assert cpus.quota_cpus(tmp_path) == 1.5
    assert cpus.available_cpus(tmp_path) == 2


def test_a_cgroup_v1_quota_caps_the_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.available_cpus(tmp_path) == 3


@pytest.mark.parametrize("cpu_max", ["max 100000\n", "garbage\n"])
def test_no_quota_leaves_the_affinity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str
) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 6)
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert cpus.quota_cpus(tmp_path) is None
    assert cpus.available_cpus(tmp_path) == 6
    assert cpus.available_cpus(tmp_path / "missing") == 6


def test_a_quota_below_one_cpu_still_counts_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 4)
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert cpus.available_cpus(tmp_path) == 1


def test_without_sched_getaffinity_as_on_macos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 10)
    assert cpus.affinity_cpus() == 10
