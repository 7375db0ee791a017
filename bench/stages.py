"""Each step's replies stage by stage, as the server itself measured them, where it does.

Switchboard's per-stage reply latency (issue 16, item 3) publishes a histogram
per stage on `/metrics`, and `latency.breakdown` reads the replies made between
two scrapes. The benchmark scrapes the server before and after every step and
keeps that breakdown with the step (`stages`: stage → replies, mean, p50, p95 in
ms). A server without it (stock Pipecat, or Switchboard before the stages
landed) has no breakdown: `None`, and the report leaves it out.
"""

from __future__ import annotations

import importlib
from typing import Any

SCRAPE_TIMEOUT = 5.0


def _breakdown_module() -> Any | None:
    try:
        return importlib.import_module("latency.breakdown")
    except ModuleNotFoundError:
        return None


def scrape(port: int) -> str | None:
    """The server's `/metrics` as text, or None when it has no breakdown to give."""
    module = _breakdown_module()
    if module is None:
        return None
    try:
        text: str = module.scrape(f"http://127.0.0.1:{port}", timeout=SCRAPE_TIMEOUT)
    except (OSError, ValueError):  # no /metrics here (stock Pipecat): no breakdown
        return None
    return text


def between(before: str | None, after: str | None) -> dict[str, dict[str, float]] | None:
    """The stages of the replies made between two scrapes; None without a breakdown."""
    module = _breakdown_module()
    if module is None or before is None or after is None:
        return None
    result = module.breakdown(before, after)
    if not result:
        return None
    return {
        str(stage): {"replies": stats.replies, **stats.as_ms()} for stage, stats in result.items()
    }
