"""Balances and the ledger in the database: every change to a balance is a ledger row.

Each change carries a unique ``ref`` (``cdr:<call id>``, ``credit:<operator ref>``, ...) and is
applied in the same transaction as its ledger row, so a repeated call end or a retried credit
never counts twice, and nothing is lost across a restart. Transactions write before they read
the balance: on SQLite that takes the write lock first (no stale snapshot to upgrade), on
PostgreSQL the balance row is locked ``FOR UPDATE`` so two charges to one account queue.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.billing.rating import Balance, Charge
from lwork.storage.tables import balances, ledger


class LedgerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.engine = engine
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
        try:
            async with self._engine.begin() as conn:
                await self.apply_credit(conn, uuid, ref, balance, note, now)
        except IntegrityError:
            return False
        return True

    async def apply_credit(
        self,
        conn: AsyncConnection,
        uuid: str,
        ref: str,
        balance: Balance,
        note: str | None,
        now: float,
    ) -> None:
        """Add ``balance`` in the caller's transaction (a paid order's); IntegrityError if
        ``ref`` was applied before."""
        delta = {"coins": balance.coins, "gift_coins": balance.gift_coins,
                 "minutes": balance.minutes}  # fmt: skip
        await conn.execute(ledger.insert().values(
            uuid=uuid, ref=ref, kind="credit", forgiven=0, note=note, created_at=now,
            **delta))  # fmt: skip
        await self.locked_balance(conn, uuid, now)
        await conn.execute(
            update(balances)
            .where(balances.c.uuid == uuid)
            .values(updated_at=now, **{k: getattr(balances.c, k) + v for k, v in delta.items()})
        )

    async def apply_charge(
        self,
        conn: AsyncConnection,
        uuid: str,
        ref: str,
        before: Balance,
        charge: Charge,
        note: str,
        now: float,
    ) -> None:
        """Take ``charge`` from the balance read (locked) as ``before`` in the caller's
        transaction (a call record's close); IntegrityError if ``ref`` was charged before."""
        await conn.execute(ledger.insert().values(
            uuid=uuid, ref=ref, kind="charge", coins=-charge.coins, gift_coins=-charge.gift_coins,
            minutes=-charge.minutes, forgiven=charge.forgiven_cents + charge.forgiven_minutes,
            note=note[:200], created_at=now))  # fmt: skip
        await conn.execute(
            update(balances).where(balances.c.uuid == uuid).values(
                coins=before.coins - charge.coins,
                gift_coins=before.gift_coins - charge.gift_coins,
                minutes=before.minutes - charge.minutes, updated_at=now)
        )  # fmt: skip

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

    async def locked_balance(self, conn: AsyncConnection, uuid: str, now: float) -> Balance:
        """The balance, locked until the transaction ends (every change of one account queues
        here: charges, credits and reservations)."""
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
