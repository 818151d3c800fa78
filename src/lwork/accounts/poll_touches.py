"""Long polls recorded in the sessions table without one write per poll.

Presence (CONTRACT §4) is "long-polled within ``presence.window_s``", a window of minutes, and a
busy device polls again after every event. So a poll by a session whose last recorded poll is
older than ``slack_s`` is written at once (it may flip the account to online, on every node),
while the polls that follow within ``slack_s`` only update memory and reach the table in one
batched write per ``slack_s`` (``flush``). The table is never more than ``slack_s`` behind.
"""

from __future__ import annotations

from lwork.accounts.store import AccountStore


class PollTouches:
    def __init__(self, store: AccountStore, slack_s: float = 2.0) -> None:
        self._store = store
        self._slack_s = slack_s
        self._written: dict[str, float] = {}
        self._pending: dict[str, float] = {}

    async def touch(self, token_hash: str, now: float) -> None:
        written = self._written.get(token_hash)
        if written is not None and now - written < self._slack_s:
            self._pending[token_hash] = now
            return
        self._written[token_hash] = now
        self._pending.pop(token_hash, None)
        await self._store.touch_polls({token_hash: now})

    async def flush(self, now: float) -> None:
        """Write the deferred polls; forget sessions that have not polled for a while."""
        pending, self._pending = self._pending, {}
        if pending:
            try:
                await self._store.touch_polls(pending)
            except BaseException:
                for token, at in pending.items():  # kept for the next flush
                    self._pending.setdefault(token, at)
                raise
            self._written.update(pending)
        horizon = now - self._slack_s
        stale = [token for token, at in self._written.items() if at < horizon]
        for token in stale:
            del self._written[token]
