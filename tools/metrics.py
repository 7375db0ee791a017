"""Tool metrics: how often each tool is called, how it went, and how long it took."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

TOOL_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class ToolMetrics:
    """`switchboard_tool_calls_total{tool,outcome}` and `switchboard_tool_latency_seconds{tool}`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "switchboard_tool_calls",
            "HTTP tool calls by tool and outcome (ok, timeout, http_error, …)",
            ["tool", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "switchboard_tool_latency_seconds",
            "From the LLM's tool call to the tool's answer (or its failure)",
            ["tool"],
            buckets=TOOL_LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, tool: str, outcome: str, seconds: float) -> None:
        """Count one finished tool call: how it went (`ToolOutcomeKind`), and how long it took."""
        self.calls.labels(tool=tool, outcome=outcome).inc()
        self.latency.labels(tool=tool).observe(seconds)
