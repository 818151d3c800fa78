"""Balances, the ledger and CDRs in the database: every change to a balance is a ledger row.

Each change carries a unique ``ref`` (``cdr:<call id>``, ``credit:<operator ref>``, ...) and is
applied in the same transaction as its ledger row, so a repeated call end or a retried credit
never counts twice, and nothing is lost across a restart. Transactions write before they read
the balance: on SQLite that takes the write lock first (no stale snapshot to upgrade), on
PostgreSQL the balance row is locked ``FOR UPDATE`` so two charges to one account queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.billing.rating import Balance, Charge, Tariff, billable_minutes
from lwork.storage.tables import balances, cdrs, ledger


@dataclass(frozen=True, slots=True)
class Cdr:
    """An answered SIP leg, once it has ended (wall-clock seconds)."""

    id: str
    uuid: str
    kind: str
    callee: str
    answered_at: float
    ended_at: float
    end_reason: str

    @property
    def minutes(self) -> int:
        return billable_minutes(self.ended_at - self.answered_at)


class LedgerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._ensure_balance = insert(balances).on_conflict_do_nothing(index_elements=["uuid"])

    async def balance(self, uuid: str) -> Balance:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(balances).where(balances.c.uuid == uuid))).first()
        return _balance(row)

    async def credit(
        self, uuid: str, ref: str, balance: Balance, note: str | None, now: float
    ) -> bool:
        """Add ``balance`` to the account's; False if ``ref`` was applied before."""
        delta = {"coins": balance.coins, "gift_coins": balance.gift_coins,
                 "minutes": balance.minutes}  # fmt: skip
        try:
            async with self._engine.begin() as conn:
                await conn.execute(ledger.insert().values(
                    uuid=uuid, ref=ref, kind="credit", forgiven=0, note=note, created_at=now,
                    **delta))  # fmt: skip
                await self._locked_balance(conn, uuid, now)
                await conn.execute(
                    update(balances)
                    .where(balances.c.uuid == uuid)
                    .values(updated_at=now,
                            **{k: getattr(balances.c, k) + v for k, v in delta.items()})
                )  # fmt: skip
        except IntegrityError:
            return False
        return True

    async def settle(self, cdr: Cdr, tariff: Tariff, now: float) -> Charge | None:
        """Write the CDR and take its cost from the balance; None if it was settled before."""
        minutes = cdr.minutes
        try:
            async with self._engine.begin() as conn:
                await conn.execute(cdrs.insert().values(
                    id=cdr.id, uuid=cdr.uuid, kind=cdr.kind, callee=cdr.callee,
                    answered_at=cdr.answered_at, ended_at=cdr.ended_at, minutes=minutes, cost=0,
                    end_reason=cdr.end_reason))  # fmt: skip
                before = await self._locked_balance(conn, cdr.uuid, now)
                charge = tariff.charge(before, minutes)
                await conn.execute(
                    update(balances).where(balances.c.uuid == cdr.uuid).values(
                        coins=before.coins - charge.coins,
                        gift_coins=before.gift_coins - charge.gift_coins,
                        minutes=before.minutes - charge.minutes, updated_at=now)
                )  # fmt: skip
                cost = charge.minutes if tariff.pays_minutes else charge.cents
                await conn.execute(update(cdrs).where(cdrs.c.id == cdr.id).values(cost=cost))
                await conn.execute(ledger.insert().values(
                    uuid=cdr.uuid, ref="cdr:" + cdr.id, kind="charge", coins=-charge.coins,
                    gift_coins=-charge.gift_coins, minutes=-charge.minutes,
                    forgiven=charge.forgiven_cents + charge.forgiven_minutes,
                    note=f"{minutes} min to {cdr.callee}"[:200], created_at=now))  # fmt: skip
        except IntegrityError:
            return None
        return charge

    async def charged_since(self, uuid: str, since: float) -> Balance:
        """What charges took from the account since ``since`` (positive amounts)."""
        query = select(
            func.coalesce(func.sum(-ledger.c.coins), 0),
            func.coalesce(func.sum(-ledger.c.gift_coins), 0),
            func.coalesce(func.sum(-ledger.c.minutes), 0),
        ).where(ledger.c.uuid == uuid, ledger.c.kind == "charge", ledger.c.created_at >= since)
        async with self._engine.connect() as conn:
            coins, gift, minutes = (await conn.execute(query)).one()
        return Balance(coins=int(coins), gift_coins=int(gift), minutes=int(minutes))

    async def cdrs(self, uuid: str, start: float, end: float) -> list[dict[str, Any]]:
        """The account's CDRs answered in [start, end), oldest first."""
        query = (
            select(cdrs)
            .where(cdrs.c.uuid == uuid, cdrs.c.answered_at >= start, cdrs.c.answered_at < end)
            .order_by(cdrs.c.answered_at)
        )
        async with self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def _locked_balance(self, conn: AsyncConnection, uuid: str, now: float) -> Balance:
        await conn.execute(
            self._ensure_balance.values(uuid=uuid, coins=0, gift_coins=0, minutes=0,
                                        updated_at=now)
        )  # fmt: skip
        query = select(balances).where(balances.c.uuid == uuid).with_for_update()
        return _balance((await conn.execute(query)).first())


def _balance(row: Any) -> Balance:
    if row is None:
        return Balance()
    return Balance(coins=row.coins, gift_coins=row.gift_coins, minutes=row.minutes)
