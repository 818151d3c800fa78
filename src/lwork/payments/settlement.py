"""Settling verified notifications: many at once, in one transaction (group commit).

A notification's settlement is a handful of statements, and on SQLite, which has one writer,
each settlement used to hold the write lock across a dozen round trips to the driver's thread:
at 200 concurrent senders the server settled about 250 a second while its CPU idled. Here the
notifications that arrive while a batch is being written wait for the next one, and a batch is
written with a fixed number of statements whatever its size: the orders are read (and locked)
together, each notification is decided in turn in memory, and the changes are written with one
``executemany`` per table. A notification is acknowledged only after its batch has committed.
A batch's transaction is one unit of work (``storage.units``): on SQLite, one hop to the hot
path's thread, where the batch's own statements go straight to the driver (its reads:
``_SqliteBatch``; its writes: ``storage.many_rows``).

Should a batch fail (another transaction credited one of its trades in between, on PostgreSQL),
each of its notifications is settled again alone, so one bad notification never refuses the
others.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from lwork.billing.buckets import Grant
from lwork.billing.ledger import Credit, LedgerStore, add_credits
from lwork.billing.rating import Balance
from lwork.payments.provider import Notice
from lwork.storage.many_rows import ManyRows, ReadByKeys
from lwork.storage.tables import ledger, orders

log = logging.getLogger("lwork.payments")

BATCH_LIMIT = 256
"""Notifications written in one transaction at most (bounds the IN lists and the lock time)."""

_ORDER_COLUMNS = ("state", "trade_no", "note", "paid_at", "updated_at")
_WRITE_ORDERS = ManyRows(
    update(orders)
    .where(orders.c.payid == bindparam("b_payid"))
    .values({name: bindparam(f"b_{name}") for name in _ORDER_COLUMNS}),
    columns=[*(f"b_{name}" for name in _ORDER_COLUMNS), "b_payid"],
)
_CHANGED_VALUES = itemgetter(*_ORDER_COLUMNS)
"""An order's changed columns as a tuple, in ``_WRITE_ORDERS``' order (in C: no generator,
and its frame, per order)."""

_LOCK_ORDERS = ReadByKeys(
    lambda payids: (
        select(orders).where(orders.c.payid.in_(payids)).order_by(orders.c.payid).with_for_update()
    )
)
_CREDITED_REFS = ReadByKeys(lambda refs: select(ledger.c.ref).where(ledger.c.ref.in_(refs)))
"""Compiled once per number of keys (``storage.many_rows``): an IN list of literals built per
batch cost its coercion (each value) and a cache key, and one of expanding parameters its
rendering, a few hundred microseconds of the SQLite thread's CPU a batch."""

_TAKE_SQLITE_WRITE_LOCK = (
    update(orders).where(orders.c.payid == "").values(updated_at=orders.c.updated_at)
)
"""A write that changes no row (no payid is empty) but, being a write, begins the transaction
holding SQLite's one write lock: touching the batch's own rows for it cost an IN list compiled
anew for every batch and a row write each."""


class _SqliteBatch:
    """A batch's reads on SQLite, as plain SQL on the driver's own connection under the unit's
    transaction (the connection and transaction SQLAlchemy holds: the orders and credits
    written through it after them commit or roll back together). Its writes go the same way
    through ``ManyRows``, the one path of every hot ``executemany``.

    Through SQLAlchemy each statement costs an execution context, and each row read a result
    row and then a dict, a fixed cost per batch that weighs on small ones. Measured on the hot
    path's thread (CPU per notification, a file of 30,000 orders settled in random order, with a
    checkpoint every 50 batches): batches of 20, 110-130 us through SQLAlchemy and 98-110 us so;
    batches of 95 (the size ``bench.pay_bench`` makes at 200 senders), 73-93 and 73-77 us. The
    statements are fixed texts, so the driver's statement cache prepares each once: the keys go
    in as one JSON array (``json_each``), so the text never depends on the batch's size."""

    _COLUMNS = tuple(column.name for column in orders.columns)
    LOCK = f"UPDATE {orders.name} SET updated_at = updated_at WHERE payid = ''"
    """A write that changes no row (no payid is empty) but, being a write, begins the
    transaction holding SQLite's one write lock, before the orders are read."""
    ORDERS = (
        f"SELECT {', '.join(_COLUMNS)} FROM {orders.name}"
        " WHERE payid IN (SELECT value FROM json_each(?))"
    )
    CREDITED = f"SELECT ref FROM {ledger.name} WHERE ref IN (SELECT value FROM json_each(?))"

    @staticmethod
    def driver(conn: Connection) -> sqlite3.Connection | None:
        """The ``sqlite3`` connection under ``conn`` (None: another driver, aiosqlite's or
        PostgreSQL's, which get SQLAlchemy's statements)."""
        driver = conn.connection.driver_connection
        return driver if isinstance(driver, sqlite3.Connection) else None

    @classmethod
    def locked_orders(cls, db: sqlite3.Connection, payids: list[str]) -> dict[str, dict[str, Any]]:
        db.execute(cls.LOCK)
        names = cls._COLUMNS
        rows = db.execute(cls.ORDERS, (json.dumps(payids),)).fetchall()
        return {row[0]: dict(zip(names, row, strict=True)) for row in rows}

    @classmethod
    def credited(cls, db: sqlite3.Connection, refs: list[str]) -> set[str]:
        return {ref for (ref,) in db.execute(cls.CREDITED, (json.dumps(refs),))}


PackageGrants = Callable[[str, int, float], "list[Grant] | None"]
"""(product id, minutes, paid at) → a paid package's dated periods (None: never expiring)."""


class Settled(enum.Enum):
    CREDITED = "credited"
    CLOSED = "closed"
    UNCHANGED = "unchanged"
    """A repeat, or news about an order already settled: accepted, nothing changes."""
    FLAGGED = "flagged"
    UNKNOWN = "unknown"
    """No such order for this provider: not accepted."""


OrderCounter = Callable[[str, str], None]
"""(provider, state) → count an order entering ``state`` (a metric)."""

_ENTERED = {Settled.CREDITED: "paid", Settled.CLOSED: "closed", Settled.FLAGGED: "flagged"}


@dataclass(slots=True)
class Pending:
    """One notification waiting for its batch."""

    provider: str
    notice: Notice
    now: float
    done: asyncio.Future[Settled]


@dataclass(slots=True)
class Outcome:
    """What a batch decided: each notification's answer, and the rows to write."""

    settled: list[Settled] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    credits: list[Credit] = field(default_factory=list)


def ref_of(provider: str, trade_no: str) -> str:
    """The ledger reference of a provider's trade: a trade credits once, whichever order."""
    return f"pay:{provider}:{trade_no}"


def decide(
    batch: list[Pending],
    rows: dict[str, dict[str, Any]],
    credited: set[str],
    package_grants: PackageGrants,
) -> Outcome:
    """Each notification in arrival order against the orders as the ones before it left them
    (``rows``, changed in place) and the trades already credited (``credited``, grown)."""
    outcome = Outcome()
    for item in batch:
        answer = _decide_one(item, rows, credited, package_grants, outcome)
        outcome.settled.append(answer)
    return outcome


def _decide_one(
    item: Pending,
    rows: dict[str, dict[str, Any]],
    credited: set[str],
    package_grants: PackageGrants,
    outcome: Outcome,
) -> Settled:
    notice, provider, now = item.notice, item.provider, item.now
    order = rows.get(notice.payid)
    if order is None or order["pay_type"] != provider:
        log.warning("%s notification for unknown order %r refused", provider, notice.payid)
        return Settled.UNKNOWN
    if notice.event == "pending":
        return Settled.UNCHANGED
    state = order["state"]
    if state != "created" and state != "closed":
        if state == "paid" and order["trade_no"] != notice.trade_no:
            log.error("order %s paid by trade %s was paid again by trade %s: refund it",
                      order["payid"], order["trade_no"], notice.trade_no)  # fmt: skip
        return Settled.UNCHANGED
    if notice.event == "closed":
        if state == "closed":
            return Settled.UNCHANGED
        _change(outcome, order, now, state="closed", note=f"closed by {provider}")
        return Settled.CLOSED
    ref = ref_of(provider, notice.trade_no)
    problem = _mismatch(order, notice)
    if problem is None and ref in credited:
        problem = f"trade {notice.trade_no} already credited another order"
    if problem is not None:
        log.error("order %s flagged, not credited: %s", order["payid"], problem)
        _change(outcome, order, now, state="flagged", trade_no=notice.trade_no, note=problem[:200])
        return Settled.FLAGGED
    _change(outcome, order, now, state="paid", trade_no=notice.trade_no, paid_at=now)
    credited.add(ref)
    credit = Balance(coins=order["coins"], minutes=order["minutes"])
    note = f"order {order['payid']} ({order['product_id']}, {provider})"
    grants = package_grants(order["product_id"], order["minutes"], now)
    outcome.credits.append(Credit(order["uuid"], ref, credit, note, now, grants))
    log.info("order %s paid (trade %s): %s credited", order["payid"], notice.trade_no,
             order["uuid"])  # fmt: skip
    return Settled.CREDITED


def _change(outcome: Outcome, order: dict[str, Any], now: float, **values: Any) -> None:
    order.update(values, updated_at=now)
    outcome.orders[order["payid"]] = order


def _mismatch(order: dict[str, Any], notice: Notice) -> str | None:
    if notice.mismatch is not None:
        return notice.mismatch
    if notice.money_fen != order["money"]:
        return f"paid {notice.money_fen} fen for an order of {order['money']} fen"
    if order["state"] == "closed":
        return f"paid after the order was closed ({order['note']})"
    return None


class Settlements:
    """The queue of notifications to settle and the one task that writes them in batches."""

    def __init__(
        self,
        ledger_store: LedgerStore,
        package_grants: PackageGrants,
        counted: OrderCounter,
    ) -> None:
        self._counted = counted
        self._ledger = ledger_store
        self._package_grants = package_grants
        self._queue: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def settle(self, provider: str, notice: Notice, now: float) -> Settled:
        """Settle one notification with whatever else is waiting; its outcome once committed.
        IntegrityError if its trade's credit by another order raced it twice (nothing written)."""
        done: asyncio.Future[Settled] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(provider, notice, now, done))
        if self._writer is None or self._writer.done():
            # A task of its own: a caller that goes away (its request cancelled) must not take
            # the batch it happened to start down with it.
            self._writer = asyncio.get_running_loop().create_task(self._write_while_queued())
        # Awaited as it is, not shielded: a caller cancelled meanwhile cancels only its own
        # future, which the writer then leaves alone (it answers only futures not yet done),
        # and its notification is written with its batch all the same. A shield's second
        # future cost a turn of the event loop per notification.
        return await done

    async def _write_while_queued(self) -> None:
        batch: list[Pending] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
                try:
                    await self._write_batch(batch)
                except Exception as exc:
                    log.warning("a batch of %d notifications failed (%s): settling each alone",
                                len(batch), exc)  # fmt: skip
                    for item in batch:  # so that one notification cannot refuse the others
                        await self._write_alone(item)
        finally:  # cancelled (the server stops): nobody waits for an answer that cannot come
            for item in batch + self._queue:
                if not item.done.done():
                    item.done.cancel()

    async def _write_alone(self, item: Pending) -> None:
        """One notification of a failed batch in a transaction of its own. Its batch was the
        first try: if the ledger's unique ref refused it there (another order's credit of its
        trade committed in between, on PostgreSQL), this second try sees that credit and flags
        the order."""
        try:
            await self._write_batch([item])
        except Exception as exc:
            _fail(item, exc)

    async def _write_batch(self, batch: list[Pending]) -> None:
        outcome = await self._ledger.units.run(_settle_batch, batch, self._package_grants)
        for item, settled in zip(batch, outcome.settled, strict=True):
            entered = _ENTERED.get(settled)
            if entered is not None:
                self._counted(item.provider, entered)
            if not item.done.done():
                item.done.set_result(settled)


def _settle_batch(conn: Connection, batch: list[Pending], grants: PackageGrants) -> Outcome:
    """The batch's transaction, one unit of work (``storage.units``): lock its orders, decide
    each notification in order, write what changed with one statement per table."""
    payids = sorted({item.notice.payid for item in batch})
    paid = [item for item in batch if item.notice.event == "paid"]
    refs = sorted({ref_of(item.provider, item.notice.trade_no) for item in paid})
    db = _SqliteBatch.driver(conn)
    if db is not None:
        rows = _SqliteBatch.locked_orders(db, payids)
        credited = _SqliteBatch.credited(db, refs) if refs else set()
    else:
        rows = _locked_orders(conn, payids)
        credited = _credited(conn, refs)
    outcome = decide(batch, rows, credited, grants)
    _WRITE_ORDERS.execute_values(conn, [
        (*_CHANGED_VALUES(row), payid) for payid, row in sorted(outcome.orders.items())
    ])  # fmt: skip
    add_credits(conn, outcome.credits)
    return outcome


def _locked_orders(conn: Connection, payids: list[str]) -> dict[str, dict[str, Any]]:
    """The orders ``payids`` (sorted), locked until the commit, in payid order (so two nodes'
    batches take their locks in one order). SQLite: a write first takes its one write lock, so
    no other writer changes them between this read and the batch's writes."""
    if conn.dialect.name == "sqlite":
        conn.execute(_TAKE_SQLITE_WRITE_LOCK)
    result = _LOCK_ORDERS.execute(conn, payids)
    names = tuple(result.keys())
    # Built from the names once: dict(row._mapping) per row was a tenth of a batch's CPU.
    found = (dict(zip(names, row, strict=True)) for row in result)
    return {order["payid"]: order for order in found}


def _credited(conn: Connection, refs: list[str]) -> set[str]:
    if not refs:
        return set()
    result = _CREDITED_REFS.execute(conn, refs)
    return {str(ref) for ref in result.scalars()}


def _fail(item: Pending, error: BaseException) -> None:
    if not item.done.done():
        item.done.set_exception(error)
