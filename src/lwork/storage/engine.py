"""Database engine creation and migrations (Alembic, applied at ``lwork migrate`` and start-up)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from lwork.storage.sqlite_thread import SqliteThread

_MIGRATIONS = Path(__file__).parent / "migrations"
POOL_OVERFLOW = 10
"""Connections a PostgreSQL process's shared pool opens past ``pool_size`` at busy moments."""


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A fixed set of connections: SQLite serialises writers anyway, and overflow
        # connections (each an aiosqlite thread) would be opened and closed under load.
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        sqlite_pragmas(engine.sync_engine)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=POOL_OVERFLOW, pool_pre_ping=True
    )


def sqlite_pragmas(engine: Engine) -> None:
    """Every SQLite connection ``engine`` opens gets lwork's pragmas."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        # WAL lets readers run while one writer commits; busy_timeout waits out a writer
        # instead of failing with "database is locked".
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def sqlite_hot_path(engine: AsyncEngine) -> SqliteThread | None:
    """The per-event writes' own thread and connection, for a SQLite file (not in memory)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    return SqliteThread(str(database))


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def to_revision(revision: str, down: bool = False) -> Callable[[Connection], None]:
    """What ``AsyncConnection.run_sync`` runs to bring the schema up (or ``down``) to
    ``revision``: for tests of one migration's data, and an operator's rollback."""

    def run(connection: Connection) -> None:
        config = _alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


# Any constant: every lwork node takes the same PostgreSQL advisory lock while migrating.
_MIGRATION_LOCK = 0x6C776F726B


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe when several nodes start at once."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), "head")

    if engine.dialect.name == "sqlite":
        database = engine.url.database
        lock_path = (
            Path(f"{database}.migrate.lock") if database and database != ":memory:" else None
        )
        with _file_lock(lock_path):
            async with engine.begin() as connection:
                await connection.run_sync(upgrade)
        return
    async with engine.begin() as connection:
        await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
        await connection.run_sync(upgrade)


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with path.open("a") as handle:
        # Blocking for the few milliseconds another process needs to migrate the same file.
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
