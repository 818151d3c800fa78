"""Units of work on both ways they run: on the SQLite hot path's thread (a synchronous engine of
its own) and through the async engine (``run_sync``, as on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Tariff
from lwork.billing.reservations import Refusal, ReservationStore
from lwork.storage.engine import sqlite_hot_path
from lwork.storage.tables import reservations
from lwork.storage.units import Units


@pytest.fixture(params=["as_lwork_runs_them", "async_engine"])
async def units(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Units]:
    """As lwork runs them (SQLite: on the hot path's thread; PostgreSQL: through the engine),
    and through the async engine whatever the database."""
    thread = sqlite_hot_path(engine) if request.param == "as_lwork_runs_them" else None
    units = Units(engine, thread)
    yield units
    await units.close()
    if thread is not None:
        await thread.close()


def _reserve(conn: Connection, id_: str, fail: bool = False) -> int:
    conn.execute(reservations.insert().values(
        id=id_, uuid="u1", cents=100, minutes=0, owner="n1/a", heartbeat_at=1.0))  # fmt: skip
    if fail:
        raise RuntimeError("the work failed after its write")
    return int(conn.execute(select(func.count()).select_from(reservations)).scalar_one())


async def _ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(reservations.c.id))).scalars())


async def test_a_unit_commits_what_it_wrote_and_answers_its_result(
    units: Units, engine: AsyncEngine
) -> None:
    assert await units.run(_reserve, "c1") == 1
    assert await units.run(_reserve, id_="c2") == 2
    assert await _ids(engine) == {"c1", "c2"}


async def test_a_unit_that_raises_writes_nothing_and_the_next_one_runs(
    units: Units, engine: AsyncEngine
) -> None:
    with pytest.raises(RuntimeError, match="failed after its write"):
        await units.run(_reserve, "lost", fail=True)
    assert await units.run(_reserve, "kept") == 1
    assert await _ids(engine) == {"kept"}


async def test_parallel_holds_on_one_balance_through_units_never_overdraw(
    units: Units, engine: AsyncEngine
) -> None:
    """The balance pays ten first minutes; forty calls ask at once."""
    ledger = LedgerStore(engine, units)
    await ledger.credit("u1", "credit:1", Balance(coins=1000), None, 1.0)
    store = ReservationStore(engine, ledger)
    tariff = Tariff(pays_minutes=False, cents_per_minute=100)
    answers = await asyncio.gather(*(
        store.hold(f"c{n}", "u1", tariff, 1, 100, "n1/a", 2.0) for n in range(40)
    ))  # fmt: skip
    assert answers.count(None) == 10
    assert answers.count(Refusal.POOR) == 30
    assert len(await store.held("u1")) == 10


def _pragmas(conn: Connection) -> tuple[int, int]:
    autocheckpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
    synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
    return int(autocheckpoint), int(synchronous)


async def test_units_on_the_hot_path_never_checkpoint_in_their_commits(
    engine: AsyncEngine,
) -> None:
    """The connection a unit really runs on, on SQLite's hot-path thread, has that thread's
    pragmas: no checkpoint (and its fsync) in a commit there, the log left to the checkpoints
    run beside it; synchronous NORMAL (1)."""
    thread = sqlite_hot_path(engine)
    if thread is None:
        pytest.skip("only SQLite files have a hot-path thread")
    units = Units(engine, thread)
    try:
        assert await units.run(_pragmas) == (0, 1)
    finally:
        await units.close()
        await thread.close()
