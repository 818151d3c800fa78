"""``/metrics`` of a machine running ``http.workers``: one Prometheus scrape shows every worker.

A scraper reaches the shared port, so the kernel hands each scrape to one worker at random: its
counters alone would jump between workers' values from one scrape to the next. The worker that
takes a scrape asks the others for their families over the bus (the local hub, or Redis) and
answers with all of them, each sample labelled ``worker``; one that does not answer in time (it
is restarting) is absent from that scrape, as a target that failed its scrape would be.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.registry import Collector

from lwork.calls.router import CallRouter
from lwork.http.workers import node_name
from lwork.metrics import Family, families_of, gather_workers

OPERATION = "worker_metrics"


def machine_scrape(
    router: CallRouter, own: Collector, node: str, index: int, count: int
) -> Callable[[], Awaitable[Collector]]:
    """Serve this worker's families to the others (``node`` is this worker's node name,
    ``<base>-w<index>``), and return the scrape of all ``count`` workers."""

    async def serve(sid: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"families": families_of(own)}

    router.register(OPERATION, serve)
    base = node.removesuffix(f"-w{index}")

    async def ask(other: int) -> list[Family] | None:
        reply = await router.ask_node(node_name(base, other), OPERATION)
        families = reply.get("families") if isinstance(reply, dict) else None
        return families if isinstance(families, list) else None

    others = [other for other in range(count) if other != index]

    async def scrape() -> Collector:
        return await gather_workers((index, own), others, ask)

    return scrape
