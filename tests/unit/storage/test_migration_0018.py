"""Migration 0018: the orders' indexes a settlement leaves alone, up and down, on SQLite and
PostgreSQL, the orders kept and every query by account, state or trade answered the same."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from lwork.billing.ledger import LedgerStore
from lwork.payments.orders import WAITING, OrderStore
from lwork.storage.engine import migrate, to_revision
from lwork.storage.tables import orders

_BEFORE = {
    "ix_orders_uuid": ["uuid", "state", "paid_at"],
    "ix_orders_open": ["state", "expires_at"],
    "ix_orders_created": ["created_at"],
    "ix_orders_trade": ["pay_type", "trade_no"],
}
_AFTER = {
    "ix_orders_account": ["uuid", "created_at"],
    "ix_orders_waiting": ["created_at"],
    "ix_orders_created": ["created_at"],
    "ix_orders_trade": ["pay_type", "trade_no"],
}


def _indexes(conn: Connection) -> dict[str, list[str]]:
    return {ix["name"]: list(ix["column_names"]) for ix in inspect(conn).get_indexes("orders")}


def _order(payid: str, state: str, created_at: float, trade_no: str | None) -> dict[str, Any]:
    return {"payid": payid, "uuid": "u1", "uuid_raw": "u1", "product_id": "coins_300",
            "pay_type": "alipay", "money": 3000, "coins": 30000, "minutes": 0, "state": state,
            "trade_no": trade_no, "created_at": created_at, "expires_at": created_at + 1800,
            "paid_at": created_at + 5 if state == "paid" else None,
            "updated_at": created_at}  # fmt: skip


async def _answers(engine: AsyncEngine) -> tuple[Any, ...]:
    store = OrderStore(engine, LedgerStore(engine))
    return (
        [w.payid for w in await store.waiting(created_before=100.0, limit=10)],
        await store.payid_of_trade("alipay", "T2"),
        await store.payid_of_trade("alipay", "nothing"),
        [r.paid_at for r in await store.recharges("u1")],
        [r.payid for r in await store.listing("u1", 0.0, 1e9, None, 10)],
    )


async def test_migration_0018_changes_only_the_orders_indexes_and_keeps_every_answer(
    db_url: str,
) -> None:
    engine = create_async_engine(db_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0017", down=True))
            assert await conn.run_sync(_indexes) == _BEFORE
            await conn.execute(orders.insert(), [
                _order("P1", "created", 10.0, None), _order("P2", "paid", 20.0, "T2"),
                _order("P3", "created", 30.0, None), _order("P4", "closed", 40.0, None),
                _order("P5", "created", 200.0, None),
            ])  # fmt: skip
        expected = (["P1", "P3"], "P2", None, [25.0], ["P1", "P2", "P3", "P4", "P5"])
        assert await _answers(engine) == expected
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_indexes) == _AFTER
        assert await _answers(engine) == expected
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0017", down=True))
            assert await conn.run_sync(_indexes) == _BEFORE
        assert await _answers(engine) == expected
        await migrate(engine)
    finally:
        await engine.dispose()


def _plan(conn: Connection) -> str:
    """How the database would read reconciliation's query (sequential scans off, on
    PostgreSQL: on a few rows it would rather read the table)."""
    query = WAITING.params(created_before=100.0, limit=10)
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return " ".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


async def test_reconciliations_query_reads_the_index_of_created_orders(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert "ix_orders_waiting" in await conn.run_sync(_plan)
