"""Presence (CONTRACT §4): online = the live session long-polled within the window.

Kept in the sessions table, so it is shared by every node and survives a restart. Reads are
cached per account for ``cache_s`` because contact lists are polled often; this node's own
changes (login, logout, the first poll) clear the entry at once, another node's show within
``cache_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lwork.accounts.store import AccountStore

_NOT_REGISTERED = -1.0


class SessionPresence:
    def __init__(
        self,
        store: AccountStore,
        window_s: float,
        wall: Callable[[], float],
        cache_s: float = 2.0,
        max_entries: int = 100_000,
    ) -> None:
        self._store = store
        self._window_s = window_s
        self._wall = wall
        self._cache_s = cache_s
        self._max_entries = max_entries
        # uuid -> (fetched at, last poll: None = never, -1 = no account)
        self._cache: dict[str, tuple[float, float | None]] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def _fetch(self, uuids: list[str], now: float) -> None:
        try:
            found = await self._store.last_polls(uuids)
            if len(self._cache) + len(uuids) > self._max_entries:
                self._cache.clear()
            for uuid in uuids:
                self._cache[uuid] = (now, found[uuid] if uuid in found else _NOT_REGISTERED)
        finally:
            for uuid in uuids:
                self._inflight.pop(uuid, None)

    def forget(self, uuid: str) -> None:
        self._cache.pop(uuid, None)

    async def states(self, uuids: list[str]) -> dict[str, str]:
        """``online`` or ``offline`` for each registered account among ``uuids``."""
        now = self._wall()
        stale = [
            uuid
            for uuid in uuids
            if (entry := self._cache.get(uuid)) is None or now - entry[0] >= self._cache_s
        ]
        if stale:
            # One query per stale account at a time: requests arriving meanwhile wait for it
            # instead of all asking the database when a popular entry expires.
            new = [uuid for uuid in stale if uuid not in self._inflight]
            if new:
                fetch = asyncio.ensure_future(self._fetch(new, now))
                for uuid in new:
                    self._inflight[uuid] = fetch
            await asyncio.gather(*{self._inflight[u] for u in stale if u in self._inflight})
            forgotten = [uuid for uuid in stale if uuid not in self._cache]
            if forgotten:  # a local change cleared them while we waited: read them afresh
                await self._fetch(forgotten, now)
        horizon = now - self._window_s
        states = {}
        for uuid in uuids:
            last_poll = self._cache[uuid][1]
            if last_poll == _NOT_REGISTERED:
                continue
            states[uuid] = "online" if last_poll is not None and last_poll > horizon else "offline"
        return states
