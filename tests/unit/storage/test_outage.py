"""Storage outages told from bugs, with exceptions raised by real databases and pools, and the
outage log's pacing (one line at once, then one summary per window)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from lwork.storage.outage import OutageLog, outage_of


async def _raised(
    url: str, work: Callable[[AsyncConnection], Awaitable[Any]], **pool: Any
) -> Exception:
    engine = create_async_engine(url, **pool)
    try:
        async with engine.connect() as conn:
            await work(conn)
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the statement did not fail")


async def test_a_full_sqlite_database_is_an_outage(tmp_path: Path) -> None:
    async def fill(conn: AsyncConnection) -> None:
        await conn.execute(text("PRAGMA max_page_count = 2"))
        await conn.execute(text("CREATE TABLE t (x TEXT)"))
        for _ in range(100):
            await conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "y" * 4000})

    exc = await _raised(f"sqlite+aiosqlite:///{tmp_path / 'db'}", fill)
    assert outage_of(exc) == "OperationalError: database or disk is full"


async def test_an_exhausted_pool_is_an_outage(tmp_path: Path) -> None:
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'db'}", pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    try:
        async with engine.connect():
            with pytest.raises(Exception) as raised:
                async with engine.connect():
                    pass
    finally:
        await engine.dispose()
    assert outage_of(raised.value) == "no free database connection within the pool's timeout"


async def test_a_refused_connection_is_an_outage() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connecting is refused

        async def select(conn: AsyncConnection) -> None:
            await conn.execute(text("SELECT 1"))

        exc = await _raised(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", select)
    assert isinstance(exc, ConnectionRefusedError)
    assert (outage_of(exc) or "").startswith("ConnectionRefusedError: ")


async def test_a_broken_statement_or_constraint_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db'}"

    async def duplicate(conn: AsyncConnection) -> None:
        await conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))

    async def no_table(conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT * FROM no_such_table"))

    assert outage_of(await _raised(url, duplicate)) is None
    # SQLite reports a missing table as an OperationalError too: its result code tells.
    assert outage_of(await _raised(url, no_table)) is None
    assert outage_of(KeyError("x")) is None
    assert outage_of(FileNotFoundError(2, "No such file")) is None


def test_the_first_failure_is_logged_then_one_summary_per_window() -> None:
    outages = OutageLog(every_s=10)
    first = outages.failed("ConnectionRefusedError: refused", now=100.0)
    assert first is not None and first.endswith("ConnectionRefusedError: refused")
    assert [
        outages.failed("ConnectionRefusedError: refused", now=100 + i / 10) for i in range(1, 60)
    ] == [None] * 59
    assert outages.failed("no free database connection", now=105.0) is None
    summary = outages.failed("ConnectionRefusedError: refused", now=110.5)
    assert summary is not None
    assert "61 requests answered service_not_available in the last 10 s" in summary
    assert "59 × ConnectionRefusedError: refused" in summary
    assert "1 × no free database connection" in summary
    # Quiet for a while: the next failure starts a new outage line, not a summary of nothing.
    later = outages.failed("ConnectionRefusedError: refused", now=500.0)
    assert later is not None and "requests answered" not in later


async def test_postgresql_out_of_connections_is_an_outage_and_a_bad_statement_is_not(
    postgres_url: str,
) -> None:
    role = f"lwork_outage_{secrets.token_hex(4)}"
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        # Superusers pass connection limits: a plain role with none left meets "too many".
        await conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    try:

        async def select(conn: AsyncConnection) -> None:
            await conn.execute(text("SELECT 1"))

        crowded = await _raised(postgres_url.replace("postgres@", f"{role}@", 1), select)
        assert (
            outage_of(crowded) == f'TooManyConnectionsError: too many connections for role "{role}"'
        )

        async def broken(conn: AsyncConnection) -> None:
            await conn.execute(text("SELEC 1"))

        assert outage_of(await _raised(postgres_url, broken)) is None
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP ROLE {role}"))
        await admin.dispose()
