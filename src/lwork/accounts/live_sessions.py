"""Which device of an account is live, cached so that a notify or a poll needs no session read.

Every event and every long poll asks "which session is live for this account?"; under load that
read was a third of the database work per event. Entries live at most ``max_age_s``; a login,
logout or password reset anywhere clears the entry at once on every node (the composition root
relays ``forget`` over the bus, and clears everything after a bus outage), so the age bound only
matters for what nothing announces: a session expiring after ``auth.session_ttl_s`` (days) of
silence.
Concurrent misses for one account share one read. An entry past its age is read again before
it is used, so it is dropped as soon as it is that old: the cache holds the accounts seen in the
last ``max_age_s``, not every account seen since start (which a node's RSS would show as a slow
climb for hours), and never more than ``max_entries``.
Each entry's age bound is drawn between ``(1 - spread) * max_age_s`` and ``max_age_s``: accounts
first read together (a node's start, a crowd logging in) would otherwise all be read again in the
same second every ``max_age_s``, which a soak showed as a p99 wave every ten minutes.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable

from lwork.accounts.store import AccountStore, Session


class LiveSessions:
    def __init__(
        self,
        store: AccountStore,
        session_ttl_s: float,
        monotonic: Callable[[], float],
        wall: Callable[[], float],
        max_age_s: float = 600.0,
        max_entries: int = 200_000,
        spread: float = 0.25,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._session_ttl_s = session_ttl_s
        self._monotonic = monotonic
        self._wall = wall
        self._max_age_s = max_age_s
        self._max_entries = max_entries
        self._spread = spread
        self._draw = draw
        self._cache: dict[str, tuple[float, float, Session | None]] = {}
        """account → (read at, stale at, session)"""
        self._inflight: dict[str, asyncio.Future[Session | None]] = {}
        self._generation: dict[str, int] = {}
        self._read_order: deque[tuple[float, str]] = deque()
        """(read at, account) of every entry stored, oldest first: what to drop when."""

    async def of(self, uuid: str) -> Session | None:
        """The account's live session, or None when it has none."""
        entry = self._cache.get(uuid)
        if entry is not None and self._monotonic() < entry[1]:
            return entry[2]
        pending = self._inflight.get(uuid)
        if pending is None:
            pending = asyncio.ensure_future(self._read(uuid))
            self._inflight[uuid] = pending
        return await asyncio.shield(pending)

    async def _read(self, uuid: str) -> Session | None:
        generation = self._generation.get(uuid, 0)
        read_at = self._monotonic()
        try:
            session = await self._store.live_session(uuid, self._wall() - self._session_ttl_s)
        finally:
            self._inflight.pop(uuid, None)
        # A forget() while the read was in flight means the answer may predate the change.
        if self._generation.get(uuid, 0) == generation:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
                self._read_order.clear()
            lifetime = self._max_age_s * (1.0 - self._spread * self._draw())
            self._cache[uuid] = (read_at, read_at + lifetime, session)
            self._read_order.append((read_at, uuid))
            self._drop_older_than(self._monotonic() - self._max_age_s)
        return session

    def _drop_older_than(self, stale: float) -> None:
        order, cache = self._read_order, self._cache
        while order and order[0][0] <= stale:
            read_at, uuid = order.popleft()
            entry = cache.get(uuid)
            if entry is not None and entry[0] == read_at:  # not read again since
                del cache[uuid]

    def __len__(self) -> int:
        """Accounts cached."""
        return len(self._cache)

    def forget(self, uuid: str) -> None:
        self._cache.pop(uuid, None)
        if uuid in self._inflight:
            self._generation[uuid] = self._generation.get(uuid, 0) + 1
        else:
            self._generation.pop(uuid, None)

    def clear(self) -> None:
        """Forget everything (the bus was down: announced changes may have been missed)."""
        for uuid in list(self._cache) + list(self._inflight):
            self.forget(uuid)
