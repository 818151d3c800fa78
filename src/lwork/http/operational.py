"""The routes an operator's monitoring calls: liveness, readiness and the node's counters."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.http.request import ApiRequest
from lwork.http.routing import RawReply, Reply, Route
from lwork.metrics import NodeMetrics


def operational_routes(engine: AsyncEngine, node_metrics: NodeMetrics) -> list[Route]:
    async def healthz(req: ApiRequest) -> Reply:
        return {"status": "ok"}

    async def readyz(req: ApiRequest) -> Reply:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    async def metrics(req: ApiRequest) -> Reply:
        scrape = node_metrics.exposition(req.headers.get("accept", ""))
        if scrape is not None:
            return RawReply(*scrape)
        return {"status": "ok", **node_metrics.values()}

    return [
        Route("GET", "/metrics", metrics, rate_limited=False, summary="counters and gauges"),
        Route("GET", "/healthz", healthz, rate_limited=False, summary="process is up"),
        Route("GET", "/readyz", readyz, rate_limited=False, summary="database reachable"),
    ]
