"""The fraud controls' database side: per-account overrides, velocity alarms (which are also
the blocks every node honours), and the call records that give an account's spending rate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.fraud.limits import Override, Spend
from lwork.storage.tables import cdrs, fraud_alarms, fraud_overrides
from lwork.storage.units import Units

ACCOUNT = "account"
PREFIX = "prefix"


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: str
    """``account`` or ``prefix``."""
    subject: str
    facts: str
    node: str
    created_at: float
    blocked_until: float
    id: int | None = None
    """Its row (None until stored)."""


class FraudStore:
    def __init__(self, engine: AsyncEngine, units: Units | None = None) -> None:
        """``units``: how the reads of every call's check run in one hop (``storage.units``)."""
        self._engine = engine
        self._units = units or Units(engine, None)
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = insert

    async def override(self, uuid: str) -> Override | None:
        return await self._units.run(_override, uuid)

    async def set_override(self, uuid: str, override: Override, now: float) -> None:
        values: dict[str, Any] = {
            "daily_cap": override.daily_cap,
            "allow_prefixes": json.dumps(list(override.allow_prefixes)),
            "deny_prefixes": json.dumps(list(override.deny_prefixes)),
            "callback_local": json.dumps(list(override.callback_local)),
            "updated_at": now,
        }
        statement = self._insert(fraud_overrides).values(uuid=uuid, **values)
        statement = statement.on_conflict_do_update(index_elements=["uuid"], set_=values)
        async with self._engine.begin() as conn:
            await conn.execute(statement)

    async def clear_override(self, uuid: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(fraud_overrides).where(fraud_overrides.c.uuid == uuid)
            )
        return bool(result.rowcount)

    async def raise_alarm(self, alarm: Alarm) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(fraud_alarms.insert().values(
                kind=alarm.kind, subject=alarm.subject, facts=alarm.facts[:300],
                node=alarm.node[:64], created_at=alarm.created_at,
                blocked_until=alarm.blocked_until))  # fmt: skip

    async def blocked(self, subjects: list[str], now: float) -> set[str]:
        """Which of ``subjects`` (accounts, ranges) an alarm blocks at ``now``."""
        return await self._units.run(_blocked, subjects, now)

    async def alarms(self, since: float, now: float, active_only: bool) -> list[Alarm]:
        """Alarms raised since ``since`` (and, unless ``active_only``, still blocking or not),
        oldest first."""
        condition = or_(fraud_alarms.c.created_at >= since, fraud_alarms.c.blocked_until > now)
        if active_only:
            condition = fraud_alarms.c.blocked_until > now
        query = select(fraud_alarms).where(condition).order_by(fraud_alarms.c.id)
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(query))
        return [Alarm(row.kind, row.subject, row.facts, row.node, row.created_at,
                      row.blocked_until, row.id) for row in rows]  # fmt: skip

    async def unblock(self, subject: str, now: float) -> int:
        """End every block of ``subject`` at once; how many there were."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(fraud_alarms)
                .where(fraud_alarms.c.subject == subject, fraud_alarms.c.blocked_until > now)
                .values(blocked_until=now)
            )
        return int(result.rowcount or 0)

    async def unblock_alarm(self, alarm_id: int, now: float) -> tuple[str, int] | None:
        """End every block of the subject alarm ``alarm_id`` names: its subject and how many
        blocks ended; None: no such alarm."""
        query = select(fraud_alarms.c.subject).where(fraud_alarms.c.id == alarm_id)
        async with self._engine.connect() as conn:
            subject = (await conn.execute(query)).scalar_one_or_none()
        if subject is None:
            return None
        return subject, await self.unblock(subject, now)

    async def spending(self, uuid: str, since: float) -> list[Spend]:
        """The account's answered call records that ended after ``since``."""
        query = select(cdrs.c.cost, cdrs.c.answered_at, cdrs.c.ended_at).where(
            cdrs.c.uuid == uuid, cdrs.c.ended_at > since, cdrs.c.answered_at.is_not(None)
        )
        async with self._engine.connect() as conn:
            return [Spend(r.cost, r.answered_at, r.ended_at) for r in await conn.execute(query)]


# Every paid call's check reads these: built once (see ``storage.units``).
_OVERRIDE = select(fraud_overrides).where(fraud_overrides.c.uuid == bindparam("f_uuid"))
_BLOCKED = select(fraud_alarms.c.subject).where(
    fraud_alarms.c.subject.in_(bindparam("f_subjects", expanding=True)),
    fraud_alarms.c.blocked_until > bindparam("f_now"),
)


def _override(conn: Connection, uuid: str) -> Override | None:
    row = conn.execute(_OVERRIDE, {"f_uuid": uuid}).first()
    if row is None:
        return None
    return Override(
        daily_cap=row.daily_cap,
        allow_prefixes=tuple(json.loads(row.allow_prefixes)),
        deny_prefixes=tuple(json.loads(row.deny_prefixes)),
        callback_local=tuple(json.loads(row.callback_local)),
    )


def _blocked(conn: Connection, subjects: list[str], now: float) -> set[str]:
    return {row.subject for row in conn.execute(_BLOCKED, {"f_subjects": subjects, "f_now": now})}
