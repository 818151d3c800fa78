"""Balances and the ledger in the database: every change to a balance is a ledger row.

Each change carries a unique ``ref`` (``cdr:<call id>``, ``credit:<operator ref>``, ...) and is
applied in the same transaction as its ledger row, so a repeated call end or a retried credit
never counts twice, and nothing is lost across a restart. Transactions write before they read
the balance: on SQLite that takes the write lock first (no stale snapshot to upgrade), on
PostgreSQL the balance row is locked ``FOR UPDATE`` so two charges to one account queue.

Package minutes live in dated buckets (``buckets.py``, ``bucket_store.py``) changed under the
same lock; a balance's ``minutes`` are those usable at the instant asked.

Locking the balance and charging a call are plain functions of a synchronous connection
(``lock_balance``, ``charge``): the calls' units of work run them in one hop
(``storage.units``); async transactions run them with ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.billing import bucket_store
from lwork.billing.buckets import Bucket, Grant, granted, total, undated
from lwork.billing.rating import Balance, Charge
from lwork.storage.many_rows import ManyRows
from lwork.storage.tables import balances, ledger
from lwork.storage.units import Units


@dataclass(slots=True)
class Credit:
    """Coins and minutes added to an account once, under ``ref``. (Not frozen: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``, 0.9 us more for
    one built per paid order on the SQLite hot path's thread; nothing changes one.)"""

    uuid: str
    ref: str
    balance: Balance
    note: str | None
    at: float
    grants: Sequence[Grant] | None = None
    """Its minutes as dated buckets adding up to them; None: one bucket that never expires."""


# The statements of every paid call's transactions are built once: building one per call (its
# values, its cache key) cost several times what running it does (see ``storage.units``).
_LOCKED_BALANCE = select(balances).where(balances.c.uuid == bindparam("b_uuid")).with_for_update()
_LEDGER_ROW = ledger.insert()
_SET_COINS = update(balances).where(balances.c.uuid == bindparam("b_uuid"))
"""Sets the columns its parameters name."""
# Creates the balance row if missing, else writes nothing: on SQLite this first write takes the
# write lock.
_ENSURE_BALANCE = {
    "postgresql": postgresql.insert(balances).on_conflict_do_nothing(index_elements=["uuid"]),
    "sqlite": sqlite.insert(balances).on_conflict_do_nothing(index_elements=["uuid"]),
}

# A batch of credits (settled payments) writes its rows with each of these once, compiled once
# (``storage.many_rows``): SQLAlchemy's building of each row's parameters was most of a batch's
# CPU beside SQLite's own.
_CREDIT_COLUMNS = ("uuid", "ref", "kind", "forgiven", "note", "created_at", "minutes", "coins",
                   "gift_coins")  # fmt: skip
_CREDIT_ROWS = ManyRows(ledger.insert().values({c: bindparam(c) for c in _CREDIT_COLUMNS}),
                        _CREDIT_COLUMNS)  # fmt: skip


def _adding_upsert(insert: Any) -> ManyRows:
    """One statement per account for a batch's credits: the balance row created holding them,
    or theirs added to it. An insert that did nothing and then an update of the same row cost
    two lookups of the account and two statements' executions (about 3 us more a credit on
    SQLite, in batches of 95 on a shared machine)."""
    columns = ("uuid", "coins", "gift_coins", "updated_at")
    added = insert.values({**{c: bindparam(c) for c in columns}, "minutes": literal_column("0")})
    return ManyRows(added.on_conflict_do_update(index_elements=["uuid"], set_={
        "coins": balances.c.coins + added.excluded.coins,
        "gift_coins": balances.c.gift_coins + added.excluded.gift_coins,
        "updated_at": added.excluded.updated_at,
    }), columns)  # fmt: skip


_ADD_TO_BALANCES = {
    "postgresql": _adding_upsert(postgresql.insert(balances)),
    "sqlite": _adding_upsert(sqlite.insert(balances)),
}


class LedgerStore:
    def __init__(self, engine: AsyncEngine, units: Units | None = None) -> None:
        """``units``: where the calls' transactions on balances run (default: through
        ``engine``, in its async transactions)."""
        self._engine = engine
        self.engine = engine
        self.units = units or Units(engine, None)
        self._ensure_balance = _ENSURE_BALANCE[engine.dialect.name]

    async def balance(self, uuid: str, now: float) -> Balance:
        """Coins, and the package minutes usable at ``now``."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(balances).where(balances.c.uuid == uuid))).first()
            minutes = total(await conn.run_sync(bucket_store.buckets_of, uuid, now), now)
        return _balance(row, minutes)

    async def buckets(self, uuid: str, now: float) -> list[Bucket]:
        """The account's package minute buckets with minutes left, not expired at ``now``."""
        async with self._engine.connect() as conn:
            return await conn.run_sync(bucket_store.buckets_of, uuid, now)

    async def credit(
        self, uuid: str, ref: str, balance: Balance, note: str | None, now: float,
        grants: Sequence[Grant] | None = None,
    ) -> bool:  # fmt: skip
        """Add ``balance`` to the account's; False if ``ref`` was applied before."""
        try:
            async with self._engine.begin() as conn:
                await self.apply_credit(conn, uuid, ref, balance, note, now, grants)
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
        grants: Sequence[Grant] | None = None,
    ) -> None:
        """Add ``balance`` in the caller's transaction (a paid order's); IntegrityError if
        ``ref`` was applied before. Its minutes are ``grants`` (dated buckets adding up to
        them), else one bucket that never expires."""
        await self.apply_credits(conn, [Credit(uuid, ref, balance, note, now, grants)])

    async def apply_credits(self, conn: AsyncConnection, credits: Sequence[Credit]) -> None:
        """``add_credits`` in the caller's async transaction."""
        await conn.run_sync(add_credits, credits)

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

    async def locked_balance(
        self, conn: AsyncConnection, uuid: str, now: float, at: float | None = None
    ) -> Balance:
        """``lock_balance`` in the caller's async transaction."""
        return await conn.run_sync(lock_balance, uuid, now, at)


def add_credits(conn: Connection, credits: Sequence[Credit]) -> None:
    """Several credits in the caller's transaction, with one statement per table whatever
    their number (a batch of paid orders); IntegrityError if a ``ref`` was applied before.
    A credit never reads the balance: adding is the same whatever it was."""
    if not credits:
        return
    buckets: list[tuple[str, str, Grant]] = []
    rows: list[tuple[Any, ...]] = []
    # One row per account, the accounts in one order, so two transactions crediting the same
    # accounts cannot each hold a lock the other waits for (PostgreSQL); its time is its last
    # credit's, as when each credit updated it in turn.
    added: dict[str, tuple[str, int, int, float]] = {}
    for c in credits:
        coins, gift, minutes = c.balance.coins, c.balance.gift_coins, c.balance.minutes
        if minutes or c.grants is not None:  # coins alone (most credits) grant no bucket
            dated = undated(minutes, c.at) if c.grants is None else list(c.grants)
            if granted(dated) != minutes:
                raise ValueError(f"buckets of {granted(dated)} minutes for {minutes}")
            buckets += [(c.uuid, c.ref, item) for item in dated]
        rows.append((c.uuid, c.ref, "credit", 0, c.note, c.at, minutes, coins, gift))
        before = added.get(c.uuid)
        if before is not None:
            coins, gift = coins + before[1], gift + before[2]
        added[c.uuid] = (c.uuid, coins, gift, c.at)
    _CREDIT_ROWS.execute_values(conn, rows)
    _ADD_TO_BALANCES[conn.dialect.name].execute_values(conn, [added[u] for u in sorted(added)])
    bucket_store.grant(conn, buckets)


def lock_balance(conn: Connection, uuid: str, now: float, at: float | None = None) -> Balance:
    """The balance, locked until the transaction ends (every change of one account queues
    here: charges, credits and reservations), with the package minutes usable at ``at``
    (default ``now``)."""
    conn.execute(
        _ENSURE_BALANCE[conn.dialect.name],
        {"uuid": uuid, "coins": 0, "gift_coins": 0, "minutes": 0, "updated_at": now},
    )
    row = conn.execute(_LOCKED_BALANCE, {"b_uuid": uuid}).first()
    instant = now if at is None else at
    return _balance(row, total(bucket_store.buckets_of(conn, uuid, instant), instant))


def charge(
    conn: Connection,
    uuid: str,
    ref: str,
    before: Balance,
    amount: Charge,
    note: str,
    now: float,
    at: float | None = None,
) -> None:
    """Take ``amount`` from the balance read (locked) as ``before`` in the caller's
    transaction (a call record's close); IntegrityError if ``ref`` was charged before. Its
    minutes come from the buckets usable at ``at`` (the call's answer; default now), expiring
    first."""
    conn.execute(_LEDGER_ROW, {
        "uuid": uuid, "ref": ref, "kind": "charge", "coins": -amount.coins,
        "gift_coins": -amount.gift_coins, "minutes": -amount.minutes,
        "forgiven": amount.forgiven_cents + amount.forgiven_minutes, "note": note[:200],
        "created_at": now,
    })  # fmt: skip
    conn.execute(_SET_COINS, {"b_uuid": uuid, "coins": before.coins - amount.coins,
                              "gift_coins": before.gift_coins - amount.gift_coins,
                              "updated_at": now})  # fmt: skip
    if amount.minutes:
        bucket_store.take(conn, uuid, amount.minutes, now if at is None else at)


def _balance(row: Any, minutes: int) -> Balance:
    if row is None:
        return Balance(minutes=minutes)
    return Balance(coins=row.coins, gift_coins=row.gift_coins, minutes=minutes)
