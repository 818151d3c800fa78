"""What a call's record costs the database: open at answer, heartbeats while it lasts (one
write per node for all its calls, so shared), close with its charge (CONTRACT §9).

For each database (SQLite in a temporary file; PostgreSQL when one answers on 127.0.0.1:5432)
``CALLS`` calls are recorded one after another as a node would: each opened, ``BEATS``
heartbeats of the node while they are all live, each closed and charged. The figure is the
time per call; the reference, measured in the same run on the same engine, is a bare
single-row insert of a table of the same width. One JSON line per database.

    python -m bench.cdr_bench            # 1,000 calls, 20 heartbeats
    python -m bench.cdr_bench --smoke    # a few seconds; exits non-zero on any failure
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Tariff
from lwork.calls.records import CallRecord
from lwork.calls.records_store import RecordStore
from lwork.storage.engine import create_engine, migrate, sqlite_hot_path
from lwork.storage.tables import cdrs, ledger
from lwork.storage.units import Units

COINS = Tariff(pays_minutes=False, cents_per_minute=300)
OWNER = "bench/1"
reference = MetaData()
bare = Table(
    "bench_bare",
    reference,
    Column("id", String(200), primary_key=True),
    Column("uuid", String(64)),
    Column("callee", String(64)),
    Column("answered_at", Float),
    Column("minutes", Integer),
)


def record(index: int, answered: float) -> CallRecord:
    uuid = f"1380000{index % 50:04d}"  # 50 accounts share the calls, as busy ones would
    return CallRecord(id=f"bench@@{index:08d}", account=uuid, kind="out", caller=uuid,
                      callee="02079460000", caller_id=uuid, started_at=answered - 5,
                      answered_at=answered, ended_at=None, node="bench",
                      dialog='{"call_id": "x", "peer": ["127.0.0.1", 5060]}')  # fmt: skip


async def measure(engine: AsyncEngine, calls: int, beats: int) -> dict[str, object]:
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.run_sync(reference.create_all)
    # As lwork runs them: on SQLite, one hop each to the hot path's thread.
    thread = sqlite_hot_path(engine)
    units = Units(engine, thread)
    try:
        return await _measure(engine, LedgerStore(engine, units), calls, beats)
    finally:
        await units.close()
        if thread is not None:
            await thread.close()


async def _measure(
    engine: AsyncEngine, ledger_store: LedgerStore, calls: int, beats: int
) -> dict[str, object]:
    store = RecordStore(engine, ledger_store)
    for account in range(50):
        uuid = f"1380000{account:04d}"
        await ledger_store.credit(uuid, "credit:" + uuid, Balance(coins=10**9), None, 1.0)

    began = time.perf_counter()
    for index in range(calls):
        async with engine.begin() as conn:
            await conn.execute(bare.insert().values(id=f"r{index}", uuid="13800000000",
                                                    callee="02079460000", answered_at=1.0,
                                                    minutes=1))  # fmt: skip
    bare_s = (time.perf_counter() - began) / calls

    began = time.perf_counter()
    opened = [record(index, 1_000.0 + index) for index in range(calls)]
    for each in opened:
        await store.open(each, OWNER, each.answered_at or 0.0)
    for beat in range(beats):
        await store.heartbeat(OWNER, 2_000.0 + beat)
    for each in opened:
        closing = replace(each, ended_at=(each.answered_at or 0) + 61, end_reason="hangup_caller")
        if await store.close(closing, COINS, 3_000.0, release=each.id) is None:
            raise AssertionError(f"record {each.id} was not closed")
    per_call_s = (time.perf_counter() - began) / calls

    async with engine.connect() as conn:
        charges = await conn.scalar(select(func.count()).where(ledger.c.kind == "charge"))
        still_open = await conn.scalar(select(func.count()).where(cdrs.c.ended_at.is_(None)))
    if charges != calls or still_open != 0:
        raise AssertionError(f"{charges} charges and {still_open} open records for {calls} calls")
    return {
        "bench": "cdr_write_per_call",
        "db": engine.dialect.name,
        "calls": calls,
        "heartbeats": beats,
        "ms_per_call": round(per_call_s * 1000, 3),
        "reference": "bare_single_row_insert",
        "reference_ms": round(bare_s * 1000, 3),
        "ratio": round(per_call_s / bare_s, 2),
    }


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def on_postgres(calls: int, beats: int) -> dict[str, object]:
    import asyncpg

    name = f"lwork_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1/{name}", 4)
    try:
        return await measure(engine, calls, beats)
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(calls: int, beats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", 4)
        try:
            print(json.dumps(await measure(engine, calls, beats)), flush=True)
        finally:
            await engine.dispose()
    if postgres_up():
        print(json.dumps(await on_postgres(calls, beats)), flush=True)
    else:
        print(json.dumps({"bench": "cdr_write_per_call", "db": "postgresql",
                          "skipped": "nothing on 127.0.0.1:5432"}), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds; non-zero on failure")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--beats", type=int, default=20)
    args = parser.parse_args()
    calls, beats = (30, 3) if args.smoke else (args.calls, args.beats)
    try:
        asyncio.run(run(calls, beats))
    except Exception as exc:
        print(json.dumps({"bench": "cdr_write_per_call", "failed": repr(exc)}), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
