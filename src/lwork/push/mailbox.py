"""Per-device mailboxes: durable, ordered, bounded, expiring (CONTRACT §5).

Events stay until a poll has carried them to the device (they are removed only after the answer
was sent, so delivery is at-least-once), until they expire, or until their call ends.

The bound is enforced where it is observable and off the hot path: a read of an over-full
mailbox drops its oldest events (counted in ``dropped``) and returns the newest
``push.mailbox_size``; ``upkeep`` trims every mailbox and deletes expired events periodically,
so a device that never polls does not grow its mailbox without limit. A ``put`` is then one
insert.

Two implementations: on SQLite the mailbox is the per-event hot path of the default install, so
it runs its statements on the driver directly, one hop to the hot-path thread per operation
(``mailbox_sqlite``); on other databases (PostgreSQL) it uses SQLAlchemy Core on the async engine,
one autocommit statement per operation.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Delete, Row, bindparam, delete, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from lwork.ids import random_hex
from lwork.storage.sqlite_thread import SqliteThread
from lwork.storage.tables import mailbox


def device_key(uuid: str, device_id: str) -> str:
    """One string per (account, device); the device id is opaque, so it goes last."""
    return f"{uuid}/{device_id}"


@dataclass(frozen=True, slots=True)
class Pending:
    event_id: str
    body: dict[str, Any]
    queued_at: float
    """When the event was queued (wall clock): its delivery time is counted from here."""


def new_event_id() -> str:
    return random_hex(16)


class Mailbox(Protocol):
    dropped: int
    """Events pushed out of a full mailbox (oldest first) since start."""

    async def put(
        self,
        key: str,
        body: dict[str, Any],
        now: float,
        ttl_s: float,
        call_id: str | None = None,
        event_id: str | None = None,
    ) -> str: ...

    async def pending(self, key: str, now: float) -> list[Pending]:
        """The device's live events, oldest first, at most ``size`` (the newest)."""
        ...

    async def remove(self, event_ids: list[str]) -> None: ...

    async def remove_call(self, call_id: str) -> None: ...

    async def upkeep(self, now: float) -> None:
        """Delete expired events and trim every over-full mailbox to its newest ``size``."""
        ...

    async def checkpoint(self) -> None:
        """Flush what the database keeps in a write-ahead log, where the mailbox owns that."""
        ...

    async def close(self) -> None: ...


def open_mailbox(engine: AsyncEngine, size: int, hot_path: SqliteThread | None) -> Mailbox:
    """On SQLite's hot-path thread when there is one, else through SQLAlchemy."""
    if hot_path is not None:
        from lwork.push.mailbox_sqlite import SqliteMailbox

        return SqliteMailbox(hot_path, size)
    return SqlAlchemyMailbox(engine, size)


# The hot statements, built once (``storage/units.py`` says why), each one round trip on an
# autocommit connection: no BEGIN and COMMIT around it.
_INSERT = mailbox.insert()
_PENDING = (
    select(mailbox.c.id, mailbox.c.event_id, mailbox.c.body, mailbox.c.created_at)
    .where(mailbox.c.device_key == bindparam("m_key"), mailbox.c.expires_at > bindparam("m_now"))
    .order_by(mailbox.c.id)
)
_DELETE_ROWS = delete(mailbox).where(mailbox.c.id.in_(bindparam("m_ids", expanding=True)))
_DELETE_EVENTS = delete(mailbox).where(
    mailbox.c.event_id.in_(bindparam("m_event_ids", expanding=True))
)
_DELETE_CALL = delete(mailbox).where(mailbox.c.call_id == bindparam("m_call_id"))
# The upkeep's, in one transaction on every worker's timer: built once too, as one built per
# round left a reference cycle each time (``bench.soak --census``).
_DELETE_EXPIRED = delete(mailbox).where(mailbox.c.expires_at <= bindparam("m_now"))
_RANKED = select(
    mailbox.c.id,
    func.row_number()
    .over(partition_by=mailbox.c.device_key, order_by=mailbox.c.id.desc())
    .label("rank"),
).subquery()
_DELETE_OVERFLOW = delete(mailbox).where(  # each device's oldest beyond the box's size
    mailbox.c.id.in_(select(_RANKED.c.id).where(_RANKED.c.rank > bindparam("m_size")))
)

T = TypeVar("T")


class SqlAlchemyMailbox:
    """Each operation is one statement in autocommit: one round trip to PostgreSQL.

    On PostgreSQL the operations run on a pool of their own (as large as the shared one, no
    overflow), in autocommit and without the shared engine's pre-ping: through the shared pool
    an insert was six round trips (the ping's BEGIN, ``;`` and ROLLBACK, then BEGIN, INSERT,
    COMMIT, as asyncpg's query logger shows). ``push_bench --workers 2 --polls 10000 --clients
    2`` on PostgreSQL, runs interleaved on a shared machine: notify -> delivery p50/p99 47/150,
    29/97 and 60/294 ms before; 13/25 and 26/65 ms after (and 37/223 in a run whose bare
    reference also reached 612 ms). Without the ping a connection the server dropped (a
    restart) fails its next statement; SQLAlchemy then renews every connection of the pool and
    the statement is sent once more on a fresh one (``_once_more``)."""

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self._engine = engine
        self._size = size
        self.dropped = 0
        """Events pushed out of a full mailbox (oldest first) since start."""
        if engine.dialect.name == "postgresql":
            self._auto = create_async_engine(
                engine.url,
                pool_size=engine.pool.size(),  # type: ignore[attr-defined]
                max_overflow=0,
                isolation_level="AUTOCOMMIT",
            )
            self._own = True
        else:  # an in-memory SQLite: the same database only through the same pool
            self._auto = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._own = False

    async def _once_more(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work`` on an autocommit connection; again on a new one when the first was dead."""
        try:
            async with self._auto.connect() as conn:
                return await work(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        async with self._auto.connect() as conn:
            return await work(conn)

    async def put(
        self,
        key: str,
        body: dict[str, Any],
        now: float,
        ttl_s: float,
        call_id: str | None = None,
        event_id: str | None = None,
    ) -> str:
        row = {
            "event_id": event_id or new_event_id(),
            "device_key": key,
            "call_id": call_id,
            "body": json.dumps(body, separators=(",", ":")),
            "created_at": now,
            "expires_at": now + ttl_s,
        }
        attempts = 0

        async def insert(conn: AsyncConnection) -> None:
            nonlocal attempts
            attempts += 1
            try:
                await conn.execute(_INSERT, row)
            except IntegrityError:
                # Sent again after a dead connection: the first may have been committed before
                # the connection died, and the event is in the mailbox once.
                if attempts == 1:
                    raise

        await self._once_more(insert)
        return str(row["event_id"])

    async def pending(self, key: str, now: float) -> list[Pending]:
        async def read(conn: AsyncConnection) -> Sequence[Row[int, str, str, float]]:
            return (await conn.execute(_PENDING, {"m_key": key, "m_now": now})).all()

        rows = await self._once_more(read)
        excess = len(rows) - self._size
        if excess > 0:
            await self._drop([row.id for row in rows[:excess]])
            rows = rows[excess:]
        return [Pending(row.event_id, json.loads(row.body), row.created_at) for row in rows]

    async def _delete(self, statement: Delete, params: dict[str, Any]) -> int:
        async def run(conn: AsyncConnection) -> int:
            return (await conn.execute(statement, params)).rowcount or 0

        return await self._once_more(run)

    async def _drop(self, ids: list[int]) -> None:
        self.dropped += await self._delete(_DELETE_ROWS, {"m_ids": ids})

    async def remove(self, event_ids: list[str]) -> None:
        if event_ids:
            await self._delete(_DELETE_EVENTS, {"m_event_ids": event_ids})

    async def remove_call(self, call_id: str) -> None:
        await self._delete(_DELETE_CALL, {"m_call_id": call_id})

    async def upkeep(self, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_DELETE_EXPIRED, {"m_now": now})
            result = await conn.execute(_DELETE_OVERFLOW, {"m_size": self._size})
        self.dropped += result.rowcount or 0

    async def checkpoint(self) -> None:
        return None  # PostgreSQL checkpoints on its own

    async def close(self) -> None:
        if self._own:
            await self._auto.dispose()
