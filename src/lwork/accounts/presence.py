"""Presence (CONTRACT §4): online = the live session long-polled within the window.

Kept in the sessions table, so it is shared by every node and survives a restart."""

from __future__ import annotations

from collections.abc import Callable

from lwork.accounts.store import AccountStore


class SessionPresence:
    """``online``: polled within ``window_s`` (a held poll touches it at start and end);
    ``registered``: the account exists."""

    def __init__(self, store: AccountStore, window_s: float, wall: Callable[[], float]) -> None:
        self._store = store
        self._window_s = window_s
        self._wall = wall

    async def online(self, uuids: list[str]) -> set[str]:
        return await self._store.polling_uuids(uuids, self._wall() - self._window_s)

    async def registered(self, uuids: list[str]) -> set[str]:
        return await self._store.existing(uuids)
