"""Presence (CONTRACT §4): online = the live session long-polled within the window.

Kept in the sessions table, so it is shared by every node and survives a restart. Reads are
cached per account for ``cache_s`` because contact lists are polled often, and so is which
account a number reaches (its uuid, or a DID bound to it); this node's own changes (a new
account, login, logout, the first poll) clear the account's entries at once, another node's
and a DID's binding show within ``cache_s``.
"""

from __future__ import annotations

from collections.abc import Callable

from lwork.accounts.batch_cache import BatchCache
from lwork.accounts.store import AccountStore


class SessionPresence:
    def __init__(
        self,
        store: AccountStore,
        window_s: float,
        wall: Callable[[], float],
        cache_s: float = 2.0,
        max_entries: int = 100_000,
    ) -> None:
        self._window_s = window_s
        self._wall = wall
        # number -> the account it reaches
        self._owners: BatchCache[str, str] = BatchCache(store.owners_of, cache_s, wall, max_entries)
        # uuid -> its live session's last poll (None: never); a uuid with no account is absent
        self._last_polls: BatchCache[str, float | None] = BatchCache(
            store.last_polls, cache_s, wall, max_entries
        )

    def forget(self, uuid: str) -> None:
        self._owners.forget(uuid)
        self._last_polls.forget(uuid)

    async def owners(self, numbers: list[str]) -> dict[str, str]:
        """The account each of ``numbers`` (normalised) reaches, where one does."""
        return await self._owners.get_many(numbers)

    async def states(self, uuids: list[str]) -> dict[str, str]:
        """``online`` or ``offline`` for each registered account among ``uuids``."""
        last_polls = await self._last_polls.get_many(uuids)
        horizon = self._wall() - self._window_s
        return {
            uuid: "online" if last_poll is not None and last_poll > horizon else "offline"
            for uuid, last_poll in last_polls.items()
        }
