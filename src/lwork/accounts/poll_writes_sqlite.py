"""Long-poll records written on SQLite's hot-path thread (``storage/sqlite_thread.py``).

The once-a-second batch of ``PollTouches`` through the async engine held SQLite's write lock
across event-loop turns, and every mailbox write of that moment waited for it; here the whole
transaction runs on the thread that also writes the mailboxes, so the two never contend.
"""

from __future__ import annotations

from lwork.storage.sqlite_thread import SqliteThread

_TOUCH = "UPDATE sessions SET last_seen = ?, last_poll = ?, poll_ip = ? WHERE token_hash = ?"


class SqlitePollWrites:
    def __init__(self, thread: SqliteThread) -> None:
        self._thread = thread

    async def touch_polls(self, polls: dict[str, tuple[float, str]]) -> None:
        rows = [(at, at, client_ip, token) for token, (at, client_ip) in polls.items()]
        await self._thread.call(self._thread.execute_many, _TOUCH, rows)
