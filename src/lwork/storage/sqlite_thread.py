"""The SQLite hot path's own thread: one connection, fed through a queue, one hop per call.

Through SQLAlchemy's async engine (aiosqlite) a statement costs several hops to a driver thread
plus compilation, and a write transaction holds SQLite's write lock across event-loop turns: the
commit waits for the loop, and every other writer waits for the commit (in SQLite's busy handler,
which sleeps 1, 2, 5, 10 ms...). The per-event writes (mailbox, long-poll records) therefore run
here as whole units of work, each a single hop: the transaction begins and commits on this
thread. A thread pool's hop (futures with locks, then wrapped into an asyncio future) cost 47 us
of the event loop's CPU per call here; a queue and one ``call_soon_threadsafe`` cost 14 us.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def hot_path_pragmas(connection: sqlite3.Connection) -> None:
    """What every connection used on the hot path's thread gets (its own, and the units of
    work's engine there: ``storage.units``)."""
    connection.execute("PRAGMA synchronous=NORMAL")
    # A checkpoint fsyncs the database: on this thread it would hold up every event behind
    # it, so no connection here ever starts one (SQLite's default starts one in the commit
    # that takes the log past 1,000 pages) and ``checkpoint()`` runs them beside it.
    connection.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(path: str) -> None:
    """Move the write-ahead log into the database (``PASSIVE``: blocks no reader or writer)."""
    connection = sqlite3.connect(path, timeout=5.0)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        connection.close()


class SqliteThread:
    """One thread owning one SQLite connection; ``call(work, ...)`` runs ``work`` there."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[
            tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="sqlite-hot-path", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connection: sqlite3.Connection | None = None

    async def call(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._thread.start()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((future, work, args))
        return await future

    def _serve(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, timeout=5.0)
        hot_path_pragmas(connection)
        self.connection = connection
        try:
            while (job := self._jobs.get()) is not None:
                future, work, args = job
                result, error = None, None
                try:
                    result = work(*args)
                except Exception as exc:  # handed to the awaiting coroutine
                    error = exc
                try:  # each caller's own loop: tests (and embedders) run several in turn
                    future.get_loop().call_soon_threadsafe(_settle, future, result, error)
                except RuntimeError:  # that loop has closed: nobody is waiting any more
                    continue
        finally:
            connection.close()

    @property
    def path(self) -> str:
        return self._path

    def db(self) -> sqlite3.Connection:
        """The connection, for work running on this thread."""
        assert self.connection is not None
        return self.connection

    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        """On this thread: ``statement`` for every row in one transaction; rows changed."""
        db = self.db()
        db.execute("BEGIN")
        try:
            changed = db.executemany(statement, rows).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return changed

    async def checkpoint(self) -> None:
        """A checkpoint on a thread and connection of their own: its fsync holds up nothing."""
        await asyncio.to_thread(checkpoint, self._path)

    async def close(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
