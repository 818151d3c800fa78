"""Long polls recorded in the sessions table without one write per poll.

Presence (CONTRACT §4) is "long-polled within ``presence.window_s``", a window of minutes, and a
busy device polls again after every event. A poll is written at once when this node does not
know the session's recorded poll, or when that is about to leave the window (the poll may flip
the account to online, on every node); otherwise it only updates memory, and ``flush`` (every
second) writes all such polls in one statement. So the table never shows a polling device
offline, and costs one batched write per second instead of one per poll.

Each poll's client address is recorded with it: token-less requests that spend money must come
from the network of the session's current poll (CONTRACT §3), on whichever node they land. A poll
from another network than the one recorded is therefore written at once too, so that a phone
moving from Wi-Fi to LTE can spend from its new address as soon as its poll is held.
"""

from __future__ import annotations

from typing import Protocol

from lwork.accounts.authorization import network_of


class PollWrites(Protocol):
    async def touch_polls(self, polls: dict[str, tuple[float, str]]) -> None:
        """Record each session's latest long poll: token hash -> (time, client address)."""


class PollTouches:
    def __init__(self, store: PollWrites, window_s: float, prune_every_s: float = 30.0) -> None:
        self._store = store
        # The margin covers a flush interval and a slow flush; tiny windows write every poll.
        self._write_after_s = window_s - 5.0
        self._forget_after_s = window_s
        self._prune_every_s = prune_every_s
        self._pruned_at = 0.0
        # token hash -> (time, network) as recorded in the table, and what awaits the flush
        self._written: dict[str, tuple[float, str]] = {}
        self._pending: dict[str, tuple[float, str]] = {}

    async def touch(self, token_hash: str, now: float, client_ip: str) -> None:
        network = network_of(client_ip)
        written = self._written.get(token_hash)
        if written is not None and now - written[0] < self._write_after_s and written[1] == network:
            self._pending[token_hash] = (now, client_ip)
            return
        self._written[token_hash] = (now, network)
        self._pending.pop(token_hash, None)
        await self._store.touch_polls({token_hash: (now, client_ip)})

    async def flush(self, now: float) -> None:
        """Write the deferred polls; forget sessions that have not polled for a window."""
        pending, self._pending = self._pending, {}
        if pending:
            try:
                await self._store.touch_polls(pending)
            except BaseException:
                for token, poll in pending.items():  # kept for the next flush
                    self._pending.setdefault(token, poll)
                raise
            for token, (at, client_ip) in pending.items():
                self._written[token] = (at, network_of(client_ip))
        if now - self._pruned_at < self._prune_every_s:
            return
        self._pruned_at = now
        horizon = now - self._forget_after_s
        stale = [token for token, (at, _) in self._written.items() if at < horizon]
        for token in stale:
            del self._written[token]
