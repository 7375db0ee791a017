"""The stages of the replies made between two scrapes of a server's `/metrics`.

For the benchmark, or anyone measuring a step of load against a running server
(one process or many workers: `/metrics` adds the workers up):

    before = scrape("http://127.0.0.1:8100")
    ...  # the calls of one step
    for stage, stats in breakdown(before, scrape("http://127.0.0.1:8100")).items():
        print(stage, stats.replies, stats.as_ms())

Means are exact (the histogram's sum over its count); percentiles are read from
the `switchboard_reply_stage_seconds` buckets as Prometheus' `histogram_quantile`
does, linearly within a bucket, so they are as fine as the buckets.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from latency.stages import Stage

METRIC = "switchboard_reply_stage_seconds"


@dataclass
class _Histogram:
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound → cumulative count
    count: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class StageStats:
    """One stage over the replies of a stretch of time, in seconds from the caller's end of speech.

    Attributes:
        replies: Replies that reached the stage.
        mean: Their mean, exact.
        p50: Their median, from the histogram's buckets.
        p95: Their 95th percentile, from the histogram's buckets.
    """

    replies: int
    mean: float
    p50: float
    p95: float

    def as_ms(self) -> dict[str, float]:
        """Mean, p50 and p95 in milliseconds, rounded to 0.1 ms (for a JSON report)."""
        return {
            "mean_ms": round(self.mean * 1000, 1),
            "p50_ms": round(self.p50 * 1000, 1),
            "p95_ms": round(self.p95 * 1000, 1),
        }


def scrape(base_url: str, timeout: float = 10.0) -> str:
    """`GET {base_url}/metrics`, as text (blocking: call it off an event loop)."""
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/metrics", timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode()


def breakdown(before: str, after: str) -> dict[Stage, StageStats]:
    """Each stage over the replies made between two `/metrics` texts (reached by any reply)."""
    start, end = _read(before), _read(after)
    result: dict[Stage, StageStats] = {}
    for stage in Stage:
        later = end.get(stage, _Histogram())
        earlier = start.get(stage, _Histogram())
        count = later.count - earlier.count
        if count <= 0:
            continue
        buckets = {
            bound: cumulative - earlier.buckets.get(bound, 0.0)
            for bound, cumulative in sorted(later.buckets.items())
        }
        result[stage] = StageStats(
            replies=round(count),
            mean=(later.total - earlier.total) / count,
            p50=_quantile(0.5, buckets, count),
            p95=_quantile(0.95, buckets, count),
        )
    return result


def _read(text: str) -> dict[Stage, _Histogram]:
    histograms: dict[Stage, _Histogram] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            stage = Stage(sample.labels["stage"])
            histogram = histograms.setdefault(stage, _Histogram())
            if sample.name.endswith("_bucket"):
                histogram.buckets[float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_count"):
                histogram.count = sample.value
            elif sample.name.endswith("_sum"):
                histogram.total = sample.value
    return histograms


def _quantile(q: float, buckets: dict[float, float], count: float) -> float:
    """Prometheus' `histogram_quantile` over cumulative `buckets` (upper bound → count)."""
    rank = q * count
    lower, below = 0.0, 0.0
    finite = [bound for bound in buckets if bound != float("inf")]
    for bound, cumulative in buckets.items():
        if cumulative >= rank:
            if bound == float("inf"):
                return max(finite, default=0.0)
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return max(finite, default=0.0)
