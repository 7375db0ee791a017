"""The Overview page: calls per hour, how calls were answered and ended, reply latency
(p50 and p95), and this server's capacity in use.

GET /console/overview?hours=24   the last 1 to 168 hours
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

import console.charts as charts
from console.live import capacity
from console.pages import render
from deps import AdmissionDep, ConsoleSessionDep, RecordsDep
from records import dashboard

PERIODS = (1, 6, 24, 72, 168)

router = APIRouter()


@router.get("/console/overview", include_in_schema=False)
async def overview_page(
    request: Request,
    session: ConsoleSessionDep,
    admission: AdmissionDep,
    records: RecordsDep,
    hours: int = 24,
) -> Response:
    """What the calls of the last `hours` hours add up to, as charts and as figures."""
    hours = min(max(hours, 1), max(PERIODS))
    figures = await dashboard.figures(records.store, hours)
    labels = [
        (figures.since + timedelta(hours=index)).strftime("%H:00" if hours <= 24 else "%a %H:00")
        for index in range(hours)
    ]
    used = capacity(admission)
    p50, p95 = figures.latency_percentile(50), figures.latency_percentile(95)
    durations = sorted(figures.durations)
    return render(
        request,
        "overview.html",
        session,
        page="overview",
        hours=hours,
        periods=PERIODS,
        figures=figures,
        p50=p50,
        p95=p95,
        median_duration=durations[len(durations) // 2] if durations else None,
        capacity=used,
        per_hour_chart=charts.columns(
            figures.per_hour,
            labels,
            f"Calls started per hour, last {hours} h",
            every=max(1, hours // 8),
        ),
        answered_chart=charts.bars(sorted(figures.answered.items()), "How calls were answered"),
        ended_chart=charts.bars(sorted(figures.ended.items()), "Why calls ended"),
        latency_chart=charts.histogram(figures.latencies_ms, "Reply latency, turns per bucket"),
        capacity_chart=charts.gauge(used["live"], used["max"], "Capacity in use on this server"),
    )
