"""Garbage-collector policy for a server that holds many long-lived requests.

CPython 3.11 finds reference cycles by scanning tracked objects in three generations. A node
holding 19,000 long polls tracks millions of objects (each held request keeps its coroutine
frames, futures and HTTP state alive, about 400 of them): a full collection took 3 s here, and
even the middle generation, full of freshly held polls, took 25-60 ms a pass, stalling every
request on the node each time while finding nothing to free. So at the end of every collection
the survivors are frozen (``gc.freeze``): each object is scanned once, by the youngest
generation's collection, and no pause grows with the number of held polls. Frozen objects are
still freed by reference counting when their request ends; only cycles among them wait, and a
held poll's life leaves none (measured: zero cyclic garbage from frozen objects across event,
overtime and client-gone endings). Every ``release_every_s`` the frozen set goes back to the
collector for one complete pass anyway, which reclaims whatever cycles did form.

The youngest generation is collected after ``YOUNG_THRESHOLD`` net allocations instead of 700:
the counter misses the many objects that start being tracked later (dicts, mostly), so at 700 a
young collection met up to 70,000 objects of freshly held polls and paused 50 ms; now each pass
meets a few thousand.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

YOUNG_THRESHOLD = 100


class SurvivorFreezer:
    def __init__(self, release_every_s: float, monotonic: Callable[[], float]) -> None:
        self._release_every_s = release_every_s
        self._monotonic = monotonic
        self._released_at = monotonic()
        self._task: asyncio.Task[None] | None = None
        self._thresholds: tuple[int, int, int] | None = None

    @staticmethod
    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":  # the collection is over: what it left alive is long-lived
            gc.freeze()

    def release_if_due(self) -> None:
        """One complete pass over everything, every ``release_every_s``."""
        now = self._monotonic()
        if self._release_every_s and now - self._released_at >= self._release_every_s:
            self._released_at = now
            gc.unfreeze()
            gc.collect()  # now rather than at an unknown moment; its end freezes again

    def start(self, every_s: float = 1.0) -> None:
        self._thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, *self._thresholds[1:])
        gc.callbacks.append(self.on_collection)

        async def run() -> None:
            while True:
                await asyncio.sleep(every_s)
                self.release_if_due()

        self._task = asyncio.create_task(run(), name="gc-freezer")

    async def close(self) -> None:
        if self.on_collection in gc.callbacks:
            gc.callbacks.remove(self.on_collection)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
