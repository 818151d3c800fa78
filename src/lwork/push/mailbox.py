"""Per-device mailboxes: durable, ordered, bounded, expiring (CONTRACT §5).

Events stay until a poll has carried them to the device (they are removed only after the answer
was sent, so delivery is at-least-once), until they expire, or until their call ends.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.storage.tables import mailbox


def device_key(uuid: str, device_id: str) -> str:
    """One string per (account, device); the device id is opaque, so it goes last."""
    return f"{uuid}/{device_id}"


@dataclass(frozen=True, slots=True)
class Pending:
    event_id: str
    body: dict[str, Any]


class Mailbox:
    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self._engine = engine
        self._size = size
        self.dropped = 0
        """Events pushed out of a full mailbox (oldest first) since start."""

    async def put(
        self, key: str, body: dict[str, Any], now: float, ttl_s: float, call_id: str | None = None
    ) -> str:
        event_id = secrets.token_hex(16)
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
            count = await conn.scalar(
                select(func.count()).select_from(mailbox).where(mailbox.c.device_key == key)
            )
            excess = (count or 0) - self._size
            if excess > 0:
                oldest = (
                    select(mailbox.c.id)
                    .where(mailbox.c.device_key == key)
                    .order_by(mailbox.c.id)
                    .limit(excess)
                    .scalar_subquery()
                )
                await conn.execute(delete(mailbox).where(mailbox.c.id.in_(oldest)))
                self.dropped += excess
        return event_id

    async def pending(self, key: str, now: float) -> list[Pending]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(mailbox.c.event_id, mailbox.c.body)
                .where(and_(mailbox.c.device_key == key, mailbox.c.expires_at > now))
                .order_by(mailbox.c.id)
            )
            return [Pending(row.event_id, json.loads(row.body)) for row in rows]

    async def remove(self, event_ids: list[str]) -> None:
        if event_ids:
            async with self._engine.begin() as conn:
                await conn.execute(delete(mailbox).where(mailbox.c.event_id.in_(event_ids)))

    async def remove_call(self, call_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(mailbox).where(mailbox.c.call_id == call_id))

    async def purge_expired(self, now: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(mailbox).where(mailbox.c.expires_at <= now))
            return result.rowcount or 0
