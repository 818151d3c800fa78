"""Many keys read at once from the database, each at most once per ``ttl_s``.

Contact lists are polled often and by many apps (``query_status``): read uncached, every poll
would cost the database a query for numbers whose answer rarely changes. A key absent from
the source is cached as absent too, so unknown numbers cost no more than known ones. Keys asked
for while their read is in flight wait for that read instead of starting another; ``forget``
drops a key this node changed, so the next ask reads it afresh (another node's changes show
within ``ttl_s``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Absent:
    pass


_ABSENT = _Absent()


class BatchCache(Generic[K, V]):
    def __init__(
        self,
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
        ttl_s: float,
        clock: Callable[[], float],
        max_entries: int = 100_000,
    ) -> None:
        self._fetch_many = fetch
        """Reads the given keys; a key left out of its answer does not exist."""
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V | _Absent]] = {}
        self._inflight: dict[K, asyncio.Future[None]] = {}

    async def get_many(self, keys: Sequence[K]) -> dict[K, V]:
        """The value of each key among ``keys`` that exists."""
        now = self._clock()
        stale = [key for key in keys if not self._fresh(key, now)]
        if stale:
            new = [key for key in dict.fromkeys(stale) if key not in self._inflight]
            if new:
                fetch = asyncio.ensure_future(self._fetch(new, now))
                for key in new:
                    self._inflight[key] = fetch
            await asyncio.gather(*{self._inflight[k] for k in stale if k in self._inflight})
            forgotten = [key for key in stale if key not in self._entries]
            if forgotten:  # forgotten while we waited: read afresh
                await self._fetch(forgotten, now)
        found: dict[K, V] = {}
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and not isinstance(entry[1], _Absent):
                found[key] = entry[1]
        return found

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def _fresh(self, key: K, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and now - entry[0] < self._ttl_s

    async def _fetch(self, keys: list[K], now: float) -> None:
        try:
            found = await self._fetch_many(keys)
            if len(self._entries) + len(keys) > self._max_entries:
                self._entries.clear()  # bounded, whatever numbers strangers ask about
            for key in keys:
                self._entries[key] = (now, found[key] if key in found else _ABSENT)
        finally:
            for key in keys:
                self._inflight.pop(key, None)
