"""The ledger on SQLite and PostgreSQL: credits and call records (closed by ``RecordStore``)
apply once, concurrent charges queue."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Tariff
from lwork.calls.records import CallRecord
from lwork.calls.records_store import RecordStore
from lwork.storage.tables import ledger

UUID = "13800138000"
COINS = Tariff(pays_minutes=False, cents_per_minute=300)


def cdr(id_: str, seconds: float, answered: float = 1_000.0) -> CallRecord:
    return CallRecord(id=id_, account=UUID, kind="out", caller=UUID, callee="02079460000",
                      caller_id=UUID, started_at=answered - 5, answered_at=answered,
                      ended_at=answered + seconds, end_reason="hangup_caller")  # fmt: skip


async def test_a_credit_applies_once_per_reference(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    assert await store.balance(UUID, 5_000.0) == Balance()
    assert await store.credit(UUID, "credit:r1", Balance(coins=500, gift_coins=100), "top-up", 1.0)
    assert not await store.credit(UUID, "credit:r1", Balance(coins=500), None, 2.0)
    assert await store.credit(UUID, "credit:r2", Balance(minutes=7), None, 3.0)
    assert await store.balance(UUID, 5_000.0) == Balance(coins=500, gift_coins=100, minutes=7)


async def test_settling_a_cdr_charges_started_minutes_once(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    records = RecordStore(engine, store)
    await store.credit(UUID, "credit:r1", Balance(coins=1000, gift_coins=100), None, 1.0)
    charge = await records.close(cdr("n1@@a", 61), COINS, 2_000.0)
    assert charge is not None and (charge.gift_coins, charge.coins) == (100, 500)
    assert await records.close(cdr("n1@@a", 61), COINS, 2_001.0) is None  # a repeated end
    assert await store.balance(UUID, 5_000.0) == Balance(coins=500)
    [row] = await records.rows(UUID, 0.0, 10_000.0)
    assert (row["id"], row["minutes"], row["cost"], row["end_reason"], row["billsec"]) == (
        "n1@@a", 2, 600, "hangup_caller", 61,
    )  # fmt: skip
    assert (row["charge_coins"], row["charge_gift_coins"], row["forgiven"]) == (500, 100, 0)
    assert await records.rows(UUID, 1_001.0, 10_000.0) == []
    spent = await store.charged_since(UUID, 1_500.0)
    assert (spent.coins, spent.gift_coins) == (500, 100)
    assert await store.charged_since(UUID, 2_500.0) == Balance()


async def test_a_cdr_the_balance_cannot_pay_takes_it_to_zero_and_records_the_rest(
    engine: AsyncEngine,
) -> None:
    store = LedgerStore(engine)
    await store.credit(UUID, "credit:r1", Balance(coins=400), None, 1.0)
    charge = await RecordStore(engine, store).close(
        cdr("n1@@b", 150), COINS, 2_000.0
    )  # 3 minutes: 900 cents
    assert charge is not None and (charge.coins, charge.forgiven_cents) == (400, 500)
    assert await store.balance(UUID, 5_000.0) == Balance()
    async with engine.connect() as conn:
        forgiven = await conn.scalar(select(ledger.c.forgiven).where(ledger.c.ref == "cdr:n1@@b"))
    assert forgiven == 500


async def test_concurrent_charges_never_overdraw(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    records = RecordStore(engine, store)
    await store.credit(UUID, "credit:r1", Balance(coins=1500), None, 1.0)
    charges = await asyncio.gather(
        *(records.close(cdr(f"n1@@c{i}", 30), COINS, 2_000.0 + i) for i in range(8))
    )
    taken = sum(c.coins for c in charges if c is not None)
    assert taken == 1500 and await store.balance(UUID, 5_000.0) == Balance()
    async with engine.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(ledger))
    assert rows == 9  # one credit and eight charges, none lost
