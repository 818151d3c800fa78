"""Migration 0004 on SQLite and PostgreSQL keeps the records written before it (answered
outbound legs): they get a start and billsec, and a downgrade keeps them too."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from lwork.storage.engine import migrate, to_revision

OLD_ROW = (
    "INSERT INTO cdrs (id, uuid, kind, callee, answered_at, ended_at, minutes, cost, end_reason)"
    " VALUES ('n1@@old', '13800138000', 'call', '02079460000', 1000.0, 1061.5, 2, 600, 'hangup')"
)


async def test_records_written_before_0004_survive_the_upgrade_and_a_downgrade(
    db_url: str,
) -> None:
    engine = create_async_engine(db_url)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0003"))
            await conn.execute(text(OLD_ROW))
        await migrate(engine)
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT started_at, billsec, ended_at, heartbeat_at "
                                           "FROM cdrs WHERE id = 'n1@@old'"))).one()  # fmt: skip
            assert tuple(row) == (1000.0, 61, 1061.5, None)
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO cdrs (id, uuid, kind, callee, minutes, cost, end_reason) VALUES "
                "('n1@@unanswered', '13800138000', 'out', '020', 0, 0, 'sip_486')"))  # fmt: skip
            await conn.run_sync(to_revision("0003", down=True))
        async with engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM cdrs"))).scalars().all()
        assert ids == ["n1@@old"]  # the old schema cannot hold an unanswered leg
    finally:
        await engine.dispose()
