"""``ManyRows``: a statement compiled once per dialect writes what ``Connection.execute`` would,
in the caller's transaction, with the driver's errors as SQLAlchemy raises them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, create_engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.storage.many_rows import ManyRows, ReadByKeys
from lwork.storage.tables import balances, ledger, metadata

_COLUMNS = ("uuid", "ref", "kind", "forgiven", "note", "created_at", "minutes", "coins",
            "gift_coins")  # fmt: skip
_CREDIT = ManyRows(insert(ledger).values({c: bindparam(c) for c in _COLUMNS}))
_ADD_STATEMENT = (
    update(balances)
    .where(balances.c.uuid == bindparam("b_uuid"))
    .values(coins=balances.c.coins + bindparam("b_coins"))
)
_ADD = ManyRows(_ADD_STATEMENT)


def credit(ref: str, coins: int, uuid: str = "13800138000") -> dict[str, Any]:
    return {"uuid": uuid, "ref": ref, "kind": "credit", "forgiven": 0, "note": f"n {ref}",
            "created_at": 1.5, "minutes": 0, "coins": coins, "gift_coins": 0}  # fmt: skip


async def test_rows_written_are_those_execute_writes_and_a_second_run_reuses_them(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(balances), [
            {"uuid": u, "coins": 10, "gift_coins": 0, "minutes": 0, "updated_at": 0.0}
            for u in ("a", "b")
        ])  # fmt: skip
        await conn.run_sync(_CREDIT.execute, [credit("r1", 100), credit("r2", 200, "b")])
        await conn.run_sync(_CREDIT.execute, [credit("r3", 300)])  # one row: execute, not many
        await conn.run_sync(_ADD.execute, [{"b_uuid": "a", "b_coins": 5},
                                           {"b_uuid": "b", "b_coins": 7}])  # fmt: skip
        await conn.run_sync(_ADD.execute, [])  # nothing to do
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ledger).order_by(ledger.c.ref))).mappings().all()
        coins = dict((await conn.execute(select(balances.c.uuid, balances.c.coins))).all())
    assert [{k: r[k] for k in _COLUMNS} for r in rows] == [
        credit("r1", 100),
        credit("r2", 200, "b"),
        credit("r3", 300),
    ]
    assert len({r["id"] for r in rows}) == 3  # the key autoincremented, never given
    assert coins == {"a": 15, "b": 17}


async def test_a_duplicate_raises_integrity_error_and_the_transaction_rolls_back(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.run_sync(_CREDIT.execute, [credit("r1", 100), credit("r1", 100)])
    async with engine.connect() as conn:
        assert (await conn.execute(select(ledger))).all() == []


async def test_a_row_without_a_parameter_is_refused_before_anything_runs(
    engine: AsyncEngine,
) -> None:
    incomplete = credit("r1", 100)
    del incomplete["note"]
    with pytest.raises(KeyError):
        async with engine.begin() as conn:
            await conn.run_sync(_CREDIT.execute, [credit("r0", 1), incomplete])
    async with engine.connect() as conn:
        assert (await conn.execute(select(ledger))).all() == []


async def test_a_statement_needing_python_defaults_or_an_in_list_is_refused(
    engine: AsyncEngine,
) -> None:
    # ``forgiven`` has a Python-side default, which only Connection.execute fills in.
    defaults = ManyRows(insert(ledger).values({c: bindparam(c) for c in _COLUMNS[:3]}))
    expanding = ManyRows(
        update(balances)
        .where(balances.c.uuid.in_(bindparam("b_uuids", expanding=True)))
        .values(coins=0)
    )

    def run(conn: Connection, rows: ManyRows, values: dict[str, Any]) -> None:
        rows.execute(conn, [values])

    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="defaults"):
            await conn.run_sync(run, defaults, {"uuid": "a", "ref": "r", "kind": "credit"})
        with pytest.raises(ValueError, match="parameters into"):
            await conn.run_sync(run, expanding, {"b_uuids": ["a"]})


async def test_rows_of_values_write_what_rows_by_name_write_in_any_order_of_columns(
    engine: AsyncEngine,
) -> None:
    """``execute_values``: each row its values in the order of the columns named, which need
    not be the SQL's (here reversed, and the SQL's own), with the types' conversions."""
    reversed_columns = ManyRows(insert(ledger).values({c: bindparam(c) for c in _COLUMNS}),
                                _COLUMNS[::-1])  # fmt: skip
    add = ManyRows(_ADD_STATEMENT, ("b_uuid", "b_coins"))
    async with engine.begin() as conn:
        await conn.execute(insert(balances), {"uuid": "a", "coins": 10, "gift_coins": 0,
                                              "minutes": 0, "updated_at": 0.0})  # fmt: skip
        await conn.run_sync(reversed_columns.execute_values, [
            tuple(credit(ref, coins).values())[::-1] for ref, coins in (("r1", 100), ("r2", 200))
        ])  # fmt: skip
        await conn.run_sync(add.execute_values, [("a", 5), ("a", 7)])
        await conn.run_sync(add.execute_values, [])  # nothing to do
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ledger).order_by(ledger.c.ref))).mappings().all()
        coins = (await conn.execute(select(balances.c.coins))).scalar_one()
    assert [{k: r[k] for k in _COLUMNS} for r in rows] == [credit("r1", 100), credit("r2", 200)]
    assert coins == 22


async def test_rows_of_values_need_the_statements_own_columns(engine: AsyncEngine) -> None:
    missing = ManyRows(_ADD_STATEMENT, ("b_uuid",))
    other = ManyRows(_ADD_STATEMENT, ("b_uuid", "coins"))
    unnamed = ManyRows(_ADD_STATEMENT)

    def run(conn: Connection, rows: ManyRows, values: tuple[Any, ...]) -> None:
        rows.execute_values(conn, [values])

    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="not the columns"):
            await conn.run_sync(run, missing, ("a",))
        with pytest.raises(ValueError, match="not the columns"):
            await conn.run_sync(run, other, ("a", 1))
        with pytest.raises(ValueError, match="need the columns"):
            await conn.run_sync(run, unnamed, ("a", 1))


_REFS = ReadByKeys(lambda keys: select(ledger.c.ref, ledger.c.coins).where(ledger.c.ref.in_(keys))
                   .order_by(ledger.c.ref).with_for_update())  # fmt: skip


async def test_a_read_by_keys_finds_the_rows_of_each_number_of_keys(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_CREDIT.execute, [credit(f"r{n}", n) for n in range(5)])

    def read(conn: Connection, keys: list[str]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in _REFS.execute(conn, keys)]

    async with engine.begin() as conn:
        assert await conn.run_sync(read, ["r3"]) == [("r3", 3)]
        assert await conn.run_sync(read, ["r4", "r1", "x"]) == [("r1", 1), ("r4", 4)]
        # the same number of keys again: its compiled form, with these keys
        assert await conn.run_sync(read, ["r0", "r2", "r3"]) == [("r0", 0), ("r2", 2), ("r3", 3)]
        assert await conn.run_sync(read, ["y"]) == []


async def test_a_read_taking_other_parameters_is_refused(engine: AsyncEngine) -> None:
    other = ReadByKeys(
        lambda keys: select(ledger.c.ref).where(ledger.c.ref.in_(keys), ledger.c.coins > 5)
    )
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="other than its keys"):
            await conn.run_sync(lambda c: other.execute(c, ["r1"]))


def test_on_sqlites_own_driver_rows_are_written_and_a_duplicate_is_sqlalchemys_error(
    tmp_path: Path,
) -> None:
    """As on the SQLite hot path's thread (pysqlite, where the rows go to the driver itself):
    the same rows, and a duplicate raises SQLAlchemy's IntegrityError (what the callers
    catch), its transaction rolled back."""
    engine = create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    metadata.create_all(engine)
    try:
        by_values = ManyRows(insert(ledger).values({c: bindparam(c) for c in _COLUMNS}),
                             _COLUMNS)  # fmt: skip
        with engine.begin() as conn:
            _CREDIT.execute(conn, [credit("r1", 100)])
            by_values.execute_values(conn, [tuple(credit("r2", 200, "b").values())])
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _CREDIT.execute(conn, [credit("r3", 300)])
            by_values.execute_values(conn, [tuple(credit("r4", 400).values())])
            _CREDIT.execute(conn, [credit("r4", 400), credit("r1", 100)])
        with engine.connect() as conn:
            rows = conn.execute(select(ledger).order_by(ledger.c.ref)).mappings().all()
        assert [{k: r[k] for k in _COLUMNS} for r in rows] == [
            credit("r1", 100),
            credit("r2", 200, "b"),
        ]
    finally:
        engine.dispose()
