"""The routes an operator's monitoring calls: liveness, readiness and the node's counters."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.errors import HttpError
from lwork.http.request import ApiRequest
from lwork.http.routing import RawReply, Reply, Route
from lwork.metrics import NodeMetrics, exposition, prometheus_format


class Forbidden(HttpError):
    status_code = 403
    reason = "forbidden"


class MetricsOff(HttpError):
    """``metrics.enabled = false``: nothing is kept, so nothing is served."""

    status_code = 404
    reason = "metrics_disabled"


class NotReady(HttpError):
    """The database does not answer: a load balancer takes the node out until it does."""

    status_code = 503
    reason = "service_not_available"


class MetricsAccess:
    """Who may read ``/metrics``: loopback always; a listed address or network; a bearer of the
    token; anyone when ``public``. Pure: the client address and bearer come from the request."""

    def __init__(self, token: str, allow_from: Sequence[str], public: bool) -> None:
        self._token = token.encode()
        self._networks = [ipaddress.ip_network(entry, strict=False) for entry in allow_from]
        self._public = public

    def allows(self, client_ip: str, bearer: str | None) -> bool:
        if self._public:
            return True
        # compare_digest: the time taken does not tell how much of a guessed token was right.
        if self._token and bearer is not None and hmac.compare_digest(bearer.encode(), self._token):
            return True
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or any(address in network for network in self._networks)


def operational_routes(
    engine: AsyncEngine,
    node_metrics: NodeMetrics | None,
    access: MetricsAccess,
    machine: Callable[[], Awaitable[Collector]] | None = None,
) -> list[Route]:
    """``node_metrics`` None: metrics are off (``/metrics`` refuses). ``machine``: the
    Prometheus scrape of every API worker of this machine (``http.workers``); the JSON view
    stays the answering worker's own."""

    async def healthz(req: ApiRequest) -> Reply:
        return {"status": "ok"}

    async def readyz(req: ApiRequest) -> Reply:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # whatever the database's failure, this node cannot serve
            raise NotReady(type(exc).__name__) from exc
        return {"status": "ok"}

    async def metrics(req: ApiRequest) -> Reply:
        if node_metrics is None:
            raise MetricsOff("metrics.enabled is false")
        if not access.allows(req.client_ip, req.bearer):
            raise Forbidden("metrics are not open to this client")
        accept = req.headers.get("accept", "")
        collector: Collector = node_metrics
        if machine is not None and prometheus_format(accept):
            collector = await machine()
        scrape = exposition(collector, accept)
        if scrape is not None:
            return RawReply(*scrape)
        return {"status": "ok", **node_metrics.values()}

    return [
        Route("GET", "/metrics", metrics, rate_limited=False, summary="counters and gauges"),
        Route("GET", "/healthz", healthz, rate_limited=False, summary="process is up"),
        Route("GET", "/readyz", readyz, rate_limited=False, summary="database reachable"),
    ]
