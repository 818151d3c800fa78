"""Presence from login sessions: a stand-in until the push channel reports live polls."""

from __future__ import annotations

from collections.abc import Callable

from lwork.accounts.store import AccountStore


class SessionPresence:
    """``online`` = a live session used within the window; ``registered`` = the account exists."""

    def __init__(self, store: AccountStore, window_s: float, wall: Callable[[], float]) -> None:
        self._store = store
        self._window_s = window_s
        self._wall = wall

    async def online(self, uuids: list[str]) -> set[str]:
        return await self._store.live_uuids(uuids, self._wall() - self._window_s)

    async def registered(self, uuids: list[str]) -> set[str]:
        return await self._store.existing(uuids)
