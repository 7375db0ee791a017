"""The operations endpoints: liveness, readiness and metrics.

GET /healthz   liveness: 200 while the process serves at all
GET /readyz    readiness: 503 with the reasons while it should get no new calls
GET /metrics   Prometheus metrics (keep it on the internal network)
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from deps import MetricsDep
from ops.health import readiness

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: whether to send this process new calls, and if not, why."""
    ready, body = await readiness(request.app)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(metrics: MetricsDep) -> Response:
    """Every metric, for Prometheus to scrape."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
