"""Dated package minutes in the database (SQLite and PostgreSQL): grants, expiring-first
charges of call records, reservations that see only unexpired minutes, no overdraw, and the
migration of the plain minute counter."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from lwork.billing import bucket_store
from lwork.billing.buckets import Grant
from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Tariff
from lwork.billing.reservations import Refusal, ReservationStore
from lwork.calls.records import CallRecord
from lwork.calls.records_store import RecordStore
from lwork.storage.engine import migrate, to_revision
from lwork.storage.tables import minute_buckets

UUID = "02150001234"
MINUTES = Tariff(pays_minutes=True)
OWNER = "node-a/1"


def cdr(id_: str, answered: float, seconds: float) -> CallRecord:
    return CallRecord(id=id_, account=UUID, kind="out", caller=UUID, callee="02079460000",
                      caller_id=UUID, started_at=answered - 5, answered_at=answered,
                      ended_at=answered + seconds, end_reason="hangup_caller")  # fmt: skip


async def left(engine: AsyncEngine) -> list[tuple[int, float | None]]:
    query = select(minute_buckets.c.minutes_left, minute_buckets.c.expires_at).where(
        minute_buckets.c.uuid == UUID
    )
    async with engine.connect() as conn:
        return sorted(((r.minutes_left, r.expires_at) for r in await conn.execute(query)),
                      key=lambda r: (r[1] is None, r[1] or 0))  # fmt: skip


async def grant(store: LedgerStore) -> None:
    """Three buckets: 10 minutes until 1000, 20 until 2000, 5 without expiry (granted in a
    shuffled order, so the order of use is not the order of grants)."""
    assert await store.credit(UUID, "credit:undated", Balance(minutes=5), None, 0.0)
    grants = [Grant(20, 0.0, 2000.0), Grant(10, 0.0, 1000.0)]
    assert await store.credit(UUID, "package:p1", Balance(minutes=30), "pkg", 0.0, grants)


async def test_a_call_takes_from_the_package_expiring_first(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    await grant(store)
    assert (await store.balance(UUID, 500.0)).minutes == 35
    charge = await RecordStore(engine, store).close(cdr("n1@@a", 500.0, 14 * 60 - 1), MINUTES,
                                                    1400.0)  # fmt: skip
    assert charge is not None and (charge.minutes, charge.forgiven_minutes) == (14, 0)
    # the 10 expiring at 1000 went first, then 4 of the 20: the undated 5 are untouched
    assert await left(engine) == [(0, 1000.0), (16, 2000.0), (5, None)]
    assert (await store.balance(UUID, 1500.0)).minutes == 21


async def test_expired_minutes_are_not_usable(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    await grant(store)
    assert (await store.balance(UUID, 999.0)).minutes == 35
    assert (await store.balance(UUID, 1000.0)).minutes == 25  # expiry is exclusive
    assert (await store.balance(UUID, 2500.0)).minutes == 5
    # a call answered after both packages expired can only use the undated minutes
    charge = await RecordStore(engine, store).close(cdr("n1@@b", 2500.0, 8 * 60), MINUTES,
                                                    3000.0)  # fmt: skip
    assert charge is not None and (charge.minutes, charge.forgiven_minutes) == (5, 3)
    assert await left(engine) == [(10, 1000.0), (20, 2000.0), (0, None)]  # expired: untouched


async def test_a_package_expiring_during_a_call_still_pays_for_it(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    grants = [Grant(3, 0.0, 1000.0)]
    assert await store.credit(UUID, "package:p2", Balance(minutes=3), None, 0.0, grants)
    reservations = ReservationStore(engine, store)
    assert await reservations.hold("n1@@c", UUID, MINUTES, 1, 5, OWNER, 900.0) is None
    assert (await reservations.cap("n1@@c", UUID, MINUTES, 1, OWNER, 900.0)).minutes == 3
    # answered at 900 with 3 minutes granted; it ends at 1080, after the package expired
    charge = await RecordStore(engine, store).close(cdr("n1@@c", 900.0, 180.0), MINUTES, 1080.0,
                                                    release="n1@@c")  # fmt: skip
    assert charge is not None and (charge.minutes, charge.forgiven_minutes) == (3, 0)
    assert await left(engine) == [(0, 1000.0)]


async def test_reservations_see_only_unexpired_minutes(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    await grant(store)
    reservations = ReservationStore(engine, store)
    assert await reservations.hold("n1@@d", UUID, MINUTES, 1, 5, OWNER, 1500.0) is None
    assert (await reservations.cap("n1@@d", UUID, MINUTES, 1, OWNER, 1500.0)).minutes == 25
    assert await reservations.hold("n1@@e", UUID, MINUTES, 1, 5, OWNER, 1500.0) is Refusal.POOR
    await reservations.release("n1@@d")
    assert await reservations.hold("n1@@e", UUID, MINUTES, 1, 5, OWNER, 2500.0) is None
    assert (await reservations.cap("n1@@e", UUID, MINUTES, 1, OWNER, 2500.0)).minutes == 5
    future = [Grant(50, 3000.0, 4000.0)]  # not usable before it starts
    assert await store.credit(UUID, "package:later", Balance(minutes=50), None, 2500.0, future)
    assert (await reservations.cap("n1@@e", UUID, MINUTES, 1, OWNER, 2600.0)).minutes == 5


async def test_concurrent_charges_across_packages_never_overdraw(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    await grant(store)
    records = RecordStore(engine, store)
    charges = await asyncio.gather(
        *(records.close(cdr(f"n1@@f{i}", 500.0, 4 * 60), MINUTES, 600.0 + i) for i in range(12))
    )
    taken = sum(c.minutes for c in charges if c is not None)
    forgiven = sum(c.forgiven_minutes for c in charges if c is not None)
    assert (taken, forgiven) == (35, 12 * 4 - 35)
    assert [n for n, _ in await left(engine)] == [0, 0, 0]


async def test_a_grant_must_add_up_to_the_credited_minutes(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    try:
        await store.credit(UUID, "package:bad", Balance(minutes=9), None, 0.0, [Grant(5, 0, 1)])
    except ValueError:
        pass
    else:
        raise AssertionError("a grant of 5 minutes credited 9")
    assert (await store.balance(UUID, 0.0)).minutes == 0


async def test_plain_minutes_migrate_to_a_package_that_never_expires(db_url: str) -> None:
    engine = create_async_engine(db_url)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0009"))
            await conn.execute(text(
                "INSERT INTO balances (uuid, coins, gift_coins, minutes, updated_at) VALUES "
                f"('{UUID}', 100, 0, 42, 10.0), ('13800138000', 500, 0, 0, 10.0)"))  # fmt: skip
        await migrate(engine)
        store = LedgerStore(engine)
        assert await store.balance(UUID, 1e12) == Balance(coins=100, minutes=42)
        assert await store.balance("13800138000", 1e12) == Balance(coins=500)
        assert await left(engine) == [(42, None)]
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0009", down=True))
            minutes = await conn.scalar(text(f"SELECT minutes FROM balances WHERE uuid='{UUID}'"))
        assert minutes == 42
    finally:
        await engine.dispose()


async def test_a_refund_takes_back_what_a_package_still_holds(engine: AsyncEngine) -> None:
    store = LedgerStore(engine)
    await grant(store)  # package:p1 = 10 (until 1000) + 20 (until 2000); 5 undated
    charge = await RecordStore(engine, store).close(cdr("n1@@g", 500.0, 12 * 60), MINUTES, 1300.0)
    assert charge is not None and charge.minutes == 12  # 10 + 2 of the package
    async with engine.begin() as conn:
        await store.locked_balance(conn, UUID, 1500.0)
        assert await bucket_store.take_back(conn, UUID, "package:p1") == 18
        assert await bucket_store.take_back(conn, UUID, "package:p1") == 0  # nothing left
    assert (await store.balance(UUID, 1500.0)).minutes == 5  # the undated credit stays
