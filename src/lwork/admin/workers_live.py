"""The live calls of every API worker of one machine (``http.workers``) without Redis.

The workers share the local hub, over which ``CallRouter.ask_node`` reaches any of them (as
``/metrics`` gathers the machine's figures). So a console asks the other workers for their
snapshots when it builds its own, once a second while an operator watches; nobody watching,
nobody asks. A worker that does not answer within ``ASK_TIMEOUT_S`` (it is restarting) is
left out of that snapshot and the page says it shows part of the calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lwork.admin.cluster_live import OtherNodes, Rows, snapshot_of
from lwork.calls.router import CallRouter
from lwork.http.workers import node_name

OPERATION = "console_live_calls"
ASK_TIMEOUT_S = 1.0
"""A console builds a snapshot a second: a worker slower than that is left out of this one."""
REUSE_S = 0.9
"""Consoles on several workers ask within the same second: one snapshot serves them all."""


class WorkersBoard:
    def __init__(
        self,
        router: CallRouter,
        node: str,
        index: int,
        count: int,
        build: Callable[[], Rows],
        monotonic: Callable[[], float],
    ) -> None:
        """``node``: this worker's node name (``<base>-w<index>``), one of ``count``;
        ``build()``: this worker's snapshot."""
        self.node = node
        base = node.removesuffix(f"-w{index}")
        self._others = [node_name(base, other) for other in range(count) if other != index]
        self._router = router
        self._build = build
        self._monotonic = monotonic
        self._made: tuple[float, Rows] | None = None
        router.register(OPERATION, self._serve)

    def start(self) -> None:
        """Nothing runs in the background: the other workers are asked when a console is."""

    async def close(self) -> None:
        return None

    async def publish(self) -> None:
        self._made = None  # a console asking next sees this worker's calls as they are now

    async def _serve(self, sid: str, args: dict[str, Any]) -> dict[str, Any]:
        now = self._monotonic()
        if self._made is None or now - self._made[0] >= REUSE_S:
            self._made = (now, self._build())
        total, rows = self._made[1]
        return {"node": self.node, "total": total, "calls": rows}

    async def _ask(self, worker: str) -> dict[str, Any] | None:
        try:
            reply = await asyncio.wait_for(self._router.ask_node(worker, OPERATION), ASK_TIMEOUT_S)
        except TimeoutError:
            return None
        return snapshot_of(reply)

    async def others(self) -> OtherNodes:
        answers = await asyncio.gather(*(self._ask(worker) for worker in self._others))
        found = [answer for answer in answers if answer is not None]
        return OtherNodes(found, reached=len(found) == len(self._others))
