"""Units of work: a transaction's statements written as one plain function of a synchronous
SQLAlchemy connection, run in one hop.

Through the async engine every statement of a transaction is its own round trip to the
driver: on SQLite (aiosqlite) a hop to the driver's thread and back through a greenlet and an
asyncio future, several times per statement. Measured here, a one-statement transaction cost
about 960 us of CPU that way, and each further statement about 380 us; the same transaction run
synchronously on the driver's own thread cost 78 us, each further statement about 35 us. A
paid call runs a handful of such transactions (reserve, grant, open its record, close and
charge it), which made the database most of a call's CPU.

So the hot transactions are written once, as functions of a ``Connection``, and run:

- on SQLite (a file), on the hot path's thread (``SqliteThread``) with a synchronous engine of
  its own: one hop per transaction, and every such writer queues on that thread instead of in
  SQLite's busy handler;
- on anything else (PostgreSQL, an in-memory SQLite of a test), inside an async transaction
  through ``AsyncConnection.run_sync``: the same function, the driver's own awaiting.

The transaction discipline is the driver's, unchanged: on SQLite the first write begins the
transaction (pysqlite), which is why writers take their lock with a write first.

The statements of the hot units are built once, as module constants with bound parameters
(``bindparam``; an insert, or an update without ``values``, writes the columns its parameters
name), not per call: SQLAlchemy's building of a statement (coercing each value, computing its
cache key) cost more than running it. Measured here on one SQLite file: a 12-column update of a
call record, 184 us of CPU built per call and 17 us built once; a balance's ``SELECT ... FOR
UPDATE``, 64 us and 14 us.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, pool
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from lwork.storage.engine import sqlite_pragmas
from lwork.storage.sqlite_thread import SqliteThread, hot_path_pragmas

P = ParamSpec("P")
T = TypeVar("T")


def _on_the_hot_path(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    # Its commits are the hot path's too: without the thread's pragmas a settlement's commit
    # would, every 1,000 pages of log, checkpoint (and fsync) on the thread, every event
    # queued behind it.
    assert isinstance(dbapi_connection, sqlite3.Connection)
    hot_path_pragmas(dbapi_connection)


class Units:
    def __init__(self, engine: AsyncEngine, thread: SqliteThread | None) -> None:
        """``thread``: the SQLite file's hot-path thread (None: run through ``engine``)."""
        self._engine = engine
        self._thread = thread
        self._sync: Engine | None = None
        if thread is not None:
            # One connection, opened by and used on the thread (SingletonThreadPool keeps one
            # per thread), with the pragmas every SQLite connection of lwork gets.
            self._sync = create_engine(
                f"sqlite:///{thread.path}", poolclass=pool.SingletonThreadPool
            )
            sqlite_pragmas(self._sync)
            event.listen(self._sync, "connect", _on_the_hot_path)

    async def run(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(connection, *args, **kwargs)`` in one transaction: committed when it returns,
        rolled back when it raises (the exception reaches the caller)."""
        if self._thread is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(functools.partial(work, **kwargs), *args)
        return await self._thread.call(self._in_transaction, work, args, kwargs)

    def _in_transaction(
        self, work: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return work(conn, *args, **kwargs)

    async def close(self) -> None:
        """Close the synchronous engine's connection, on the thread that opened it (before the
        hot path's thread stops)."""
        if self._thread is not None and self._sync is not None:
            await self._thread.call(self._sync.dispose)
