"""How many CPUs this process may really use: what capacity and worker counts are sized by.

`os.cpu_count()` counts the host's CPUs. A process may be limited to fewer: by
its CPU affinity (`taskset`, Linux only; macOS has no `sched_getaffinity`) and,
in a container, by its cgroup's CPU quota (`docker run --cpus 2`, a Kubernetes
CPU limit), which affinity does not show.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity_cpus() -> int:
    """CPUs the process may be scheduled on (all of them where affinity is unknown)."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        return len(getaffinity(0))
    return os.cpu_count() or 1


def quota_cpus(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup's CPU quota in CPUs (`cpu.max`, or v1's `cfs_quota_us`), None when unlimited.

    Args:
        root: Where the cgroup filesystem is mounted.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000"
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()  # cgroup v1
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    if quota_us <= 0 or period_us <= 0:  # v1 says -1 for no quota
        return None
    return quota_us / period_us


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs this process can use: affinity, capped by the cgroup quota (at least 1)."""
    cpus = affinity_cpus()
    quota = quota_cpus(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)
