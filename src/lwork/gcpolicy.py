"""Garbage-collector policy for a server that holds many long-lived requests.

CPython 3.11 collects reference cycles in three generations; a full collection scans every
tracked object. A node holding 19,000 long polls tracks millions of objects (each held request
keeps its coroutine frames, futures and HTTP state alive), and one full collection took 3 s here,
stalling every request on the node, while finding nothing to free. The objects that survive a
full collection are the long-lived ones (the app, caches, held requests), so after each full
collection they are frozen (``gc.freeze``): later collections scan only what was allocated
since. Frozen objects are still freed by reference counting when their request ends; only
cycles among them would wait, and a held poll's life leaves none (measured: zero cyclic garbage
from frozen objects across event, overtime and client-gone endings). Every
``release_every_s`` the frozen set goes back to the collector for one complete pass anyway.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


class SurvivorFreezer:
    def __init__(self, release_every_s: float, monotonic: Callable[[], float]) -> None:
        self._release_every_s = release_every_s
        self._monotonic = monotonic
        self._released_at = monotonic()
        self._seen = full_collections()
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Freeze after a full collection; release the frozen set when it is due."""
        now = self._monotonic()
        if self._release_every_s and now - self._released_at >= self._release_every_s:
            self._released_at = now
            gc.unfreeze()  # the next full collection scans everything once
            self._seen = full_collections()
            return
        done = full_collections()
        if done != self._seen:
            self._seen = done
            gc.freeze()

    def start(self, every_s: float = 1.0) -> None:
        async def run() -> None:
            while True:
                await asyncio.sleep(every_s)
                self.check()

        self._task = asyncio.create_task(run(), name="gc-freezer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
