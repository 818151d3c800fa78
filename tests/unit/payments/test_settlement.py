"""Notifications settled in batches (group commit): each decided against what the ones before it
left, in one transaction, and the same outcome as settling them one at a time."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.payments.orders import OrderStore
from lwork.payments.provider import Notice
from lwork.payments.settlement import (
    Pending,
    Settled,
    _locked_orders,
    _settle_batch,
    _SqliteBatch,
    decide,
    ref_of,
)
from lwork.storage.engine import sqlite_hot_path
from lwork.storage.tables import balances, ledger, metadata, orders
from lwork.storage.units import Units

_runs = itertools.count()


def row(payid: str, state: str = "created", **fields: Any) -> dict[str, Any]:
    return {"payid": payid, "uuid": "13800138000", "pay_type": "test", "product_id": "coins_300",
            "money": 3000, "coins": 30000, "minutes": 0, "state": state, "trade_no": None,
            "note": None, "paid_at": None, "updated_at": 0.0, **fields}  # fmt: skip


def pending(payid: str, trade: str, event: str = "paid", money: int = 3000) -> Pending:
    notice = Notice(payid, trade, money, event)  # type: ignore[arg-type]
    return Pending("test", notice, 10.0, asyncio.get_running_loop().create_future())


def no_packages(product_id: str, minutes: int, at: float) -> None:
    return None


async def test_duplicates_inside_one_batch_credit_once_and_a_reused_trade_flags() -> None:
    rows = {p: row(p) for p in ("A", "B", "C")}
    batch = [pending("A", "t1"), pending("A", "t1"), pending("B", "t1"), pending("C", "t3"),
             pending("C", "t3", "closed"), pending("X", "t9"), pending("A", "t2")]  # fmt: skip
    outcome = decide(batch, rows, set(), no_packages)
    assert outcome.settled == [
        Settled.CREDITED, Settled.UNCHANGED, Settled.FLAGGED, Settled.CREDITED,
        Settled.UNCHANGED, Settled.UNKNOWN, Settled.UNCHANGED,
    ]  # fmt: skip
    assert [c.ref for c in outcome.credits] == [ref_of("test", "t1"), ref_of("test", "t3")]
    assert rows["A"]["state"] == "paid" and rows["A"]["trade_no"] == "t1"
    assert rows["B"]["state"] == "flagged" and "already credited" in rows["B"]["note"]
    assert set(outcome.orders) == {"A", "B", "C"}


async def test_a_trade_credited_before_the_batch_flags_and_a_closed_order_paid_late_flags() -> None:
    rows = {"A": row("A"), "B": row("B", state="closed", note="expired")}
    outcome = decide([pending("A", "old"), pending("B", "t2")], rows, {ref_of("test", "old")},
                     no_packages)  # fmt: skip
    assert outcome.settled == [Settled.FLAGGED, Settled.FLAGGED]
    assert outcome.credits == []
    assert "paid after the order was closed" in rows["B"]["note"]


async def test_another_providers_order_and_a_wrong_amount() -> None:
    rows = {"A": row("A", pay_type="alipay"), "B": row("B")}
    outcome = decide([pending("A", "t1"), pending("B", "t2", money=1)], rows, set(), no_packages)
    assert outcome.settled == [Settled.UNKNOWN, Settled.FLAGGED]
    assert rows["A"]["state"] == "created"


EVENTS = st.sampled_from(["paid", "paid", "paid", "closed", "pending"])
NOTICES = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3), EVENTS, st.sampled_from([3000, 3000, 1])),
    min_size=1, max_size=40,
)  # fmt: skip


async def _orders_of(engine: AsyncEngine, prefix: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(orders.c.payid, orders.c.state, orders.c.trade_no, orders.c.note)
            .where(orders.c.payid.like(f"{prefix}%"))
            .order_by(orders.c.payid)
        )
        return [(r.payid[len(prefix):], r.state, r.trade_no, r.note) for r in rows]  # fmt: skip


async def _coins_of(engine: AsyncEngine, uuid: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        coins = await conn.scalar(select(balances.c.coins).where(balances.c.uuid == uuid))
        credits = await conn.scalar(
            select(func.count()).select_from(ledger).where(ledger.c.uuid == uuid)
        )
    return int(coins or 0), int(credits or 0)


async def _open(engine: AsyncEngine, prefix: str, uuid: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(orders.insert(), [
            {"payid": f"{prefix}{n}", "uuid": uuid, "uuid_raw": uuid, "pay_type": "test",
             "product_id": "coins_300", "money": 3000, "coins": 30000, "minutes": 0,
             "state": "created", "created_at": 1.0, "expires_at": 1e10, "updated_at": 1.0}
            for n in range(6)
        ])  # fmt: skip


@pytest.fixture(params=["async_engine", "hot_path"])
async def stores(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[OrderStore]:
    """Settling through the async engine (as on PostgreSQL), and as lwork runs it on a SQLite
    file: on the hot path's thread, the batch's own statements on the driver."""
    thread = sqlite_hot_path(engine) if request.param == "hot_path" else None
    if request.param == "hot_path" and thread is None:
        pytest.skip("only SQLite files have a hot-path thread")
    units = Units(engine, thread)
    yield OrderStore(engine, LedgerStore(engine, units))
    await units.close()
    if thread is not None:
        await thread.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(notices=NOTICES)
async def test_settling_together_ends_as_settling_one_at_a_time(
    engine: AsyncEngine, stores: OrderStore, notices: list[tuple[int, int, str, int]]
) -> None:
    """Any notifications (repeats, reused trades, closes, wrong amounts), sent at once and so
    settled in batches, leave the orders, the ledger and the balance exactly as the same
    notifications settled one after another do, and get the same answers."""
    run = next(_runs)
    store = stores
    outcomes: dict[str, list[Settled]] = {}
    for mode in ("alone", "together"):
        prefix, uuid = f"r{run}{mode[0]}-", f"u{run}{mode[0]}"
        await _open(engine, prefix, uuid)
        sent = [
            (Notice(f"{prefix}{order}", f"{prefix}t{trade}", money, event), 10.0)  # type: ignore[arg-type]
            for order, trade, event, money in notices
        ]  # fmt: skip
        if mode == "alone":
            outcomes[mode] = [await store.settle("test", *item) for item in sent]
        else:
            outcomes[mode] = list(await asyncio.gather(
                *(store.settle("test", *item) for item in sent)
            ))  # fmt: skip
    assert outcomes["alone"] == outcomes["together"]
    alone, together = f"r{run}a-", f"r{run}t-"

    def renamed(text: str | None) -> str | None:
        return None if text is None else text.replace(together, alone)

    assert await _orders_of(engine, alone) == [
        (payid, state, renamed(trade), renamed(note))
        for payid, state, trade, note in await _orders_of(engine, together)
    ]
    assert await _coins_of(engine, f"u{run}a") == await _coins_of(engine, f"u{run}t")


def assert_no_other_writer(other: sqlite3.Connection) -> None:
    """``other`` cannot begin writing: the batch holds SQLite's write lock."""
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
    else:
        raise AssertionError("another writer began while the batch held its orders")


async def test_a_batch_on_sqlite_holds_the_write_lock_from_its_read_of_the_orders(
    tmp_path: Any,
) -> None:
    """Between reading its orders and writing them, a batch on SQLite keeps every other writer
    out (a refund, another node's batch): another connection cannot begin writing."""
    path = tmp_path / "lock.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(orders.insert(), [{**row("A"), "uuid_raw": "x", "created_at": 0.0,
                                        "expires_at": 9e9}])  # fmt: skip
    other = sqlite3.connect(path, timeout=0)
    with engine.begin() as conn:
        found = _locked_orders(conn, ["A"])
        assert found["A"]["state"] == "created" and found["A"]["money"] == 3000
        assert_no_other_writer(other)
    other.execute("BEGIN IMMEDIATE")  # the batch's transaction over: free again
    other.rollback()
    other.close()
    engine.dispose()


async def test_a_batch_on_sqlites_driver_holds_the_write_lock_and_reads_what_sqlalchemy_reads(
    tmp_path: Any,
) -> None:
    """The hot path's plain statements (on the driver under the unit's transaction): the same
    rows as SQLAlchemy's read, another writer kept out from the read to the commit, and the
    orders' writes and the credits committed together."""
    path = tmp_path / "driver.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(orders.insert(), [{**row(p), "uuid_raw": "x", "created_at": 0.0,
                                        "expires_at": 9e9} for p in ("A", "B")])  # fmt: skip
    other = sqlite3.connect(path, timeout=0)
    with engine.begin() as conn:
        expected = _locked_orders(conn, ["A", "B"])
    with engine.begin() as conn:
        db = _SqliteBatch.driver(conn)
        assert db is not None
        assert _SqliteBatch.locked_orders(db, ["A", "B", "X"]) == expected
        assert_no_other_writer(other)
    with engine.begin() as conn:
        outcome = _settle_batch(conn, [pending("A", "t1"), pending("B", "t1")], no_packages)
    assert outcome.settled == [Settled.CREDITED, Settled.FLAGGED]
    with engine.connect() as conn:
        states = dict(conn.execute(select(orders.c.payid, orders.c.state)).all())
        refs = list(conn.execute(select(ledger.c.ref)).scalars())
        assert _SqliteBatch.credited(_driver_of(conn), [ref_of("test", "t1"), "x"]) == {
            ref_of("test", "t1")
        }
    assert states == {"A": "paid", "B": "flagged"} and refs == [ref_of("test", "t1")]
    other.close()
    engine.dispose()


def _driver_of(conn: Any) -> sqlite3.Connection:
    db = _SqliteBatch.driver(conn)
    assert db is not None
    return db


async def test_a_caller_cancelled_while_waiting_leaves_its_notification_and_the_others_settled(
    engine: AsyncEngine,
) -> None:
    """A request that goes away while its batch is written (the provider hung up) cancels
    only its own wait: its notification is credited all the same, once, and the others in the
    batch get their answers."""
    store = OrderStore(engine, LedgerStore(engine))
    await _open(engine, "c-", "u-cancel")
    loop = asyncio.get_running_loop()
    waits = [loop.create_task(store.settle("test", Notice(f"c-{n}", f"ct{n}", 3000, "paid"), 10.0))
             for n in range(4)]  # fmt: skip
    await asyncio.sleep(0)  # all four queued, their batch on its way to the database
    waits[1].cancel()
    answers = await asyncio.gather(*waits, return_exceptions=True)
    assert isinstance(answers[1], asyncio.CancelledError)
    assert [answers[n] for n in (0, 2, 3)] == [Settled.CREDITED] * 3
    # the cancelled one was credited with its batch: a repeat changes nothing
    assert await store.settle("test", Notice("c-1", "ct1", 3000, "paid"), 11.0) is Settled.UNCHANGED
    assert await _coins_of(engine, "u-cancel") == (4 * 30000, 4)
