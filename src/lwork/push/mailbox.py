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
(``mailbox_sqlite``); on other databases (PostgreSQL) it uses SQLAlchemy Core on the async engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

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


class SqlAlchemyMailbox:
    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self._engine = engine
        self._size = size
        self.dropped = 0
        """Events pushed out of a full mailbox (oldest first) since start."""

    async def put(
        self,
        key: str,
        body: dict[str, Any],
        now: float,
        ttl_s: float,
        call_id: str | None = None,
        event_id: str | None = None,
    ) -> str:
        event_id = event_id or new_event_id()
        async with self._engine.begin() as conn:
            await conn.execute(
                mailbox.insert().values(
                    event_id=event_id,
                    device_key=key,
                    call_id=call_id,
                    body=json.dumps(body, separators=(",", ":")),
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )
        return event_id

    async def pending(self, key: str, now: float) -> list[Pending]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(mailbox.c.id, mailbox.c.event_id, mailbox.c.body, mailbox.c.created_at)
                    .where(and_(mailbox.c.device_key == key, mailbox.c.expires_at > now))
                    .order_by(mailbox.c.id)
                )
            ).all()
        excess = len(rows) - self._size
        if excess > 0:
            await self._drop([row.id for row in rows[:excess]])
            rows = rows[excess:]
        return [Pending(row.event_id, json.loads(row.body), row.created_at) for row in rows]

    async def _drop(self, ids: list[int]) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(mailbox).where(mailbox.c.id.in_(ids)))
        self.dropped += result.rowcount or 0

    async def remove(self, event_ids: list[str]) -> None:
        if event_ids:
            async with self._engine.begin() as conn:
                await conn.execute(delete(mailbox).where(mailbox.c.event_id.in_(event_ids)))

    async def remove_call(self, call_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(mailbox).where(mailbox.c.call_id == call_id))

    async def upkeep(self, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(mailbox).where(mailbox.c.expires_at <= now))
            rank = (
                func.row_number()
                .over(partition_by=mailbox.c.device_key, order_by=mailbox.c.id.desc())
                .label("rank")
            )
            ranked = select(mailbox.c.id, rank).subquery()
            result = await conn.execute(
                delete(mailbox).where(
                    mailbox.c.id.in_(select(ranked.c.id).where(ranked.c.rank > self._size))
                )
            )
        self.dropped += result.rowcount or 0

    async def checkpoint(self) -> None:
        return None  # PostgreSQL checkpoints on its own

    async def close(self) -> None:
        return None
