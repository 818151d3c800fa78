"""Whether a node's processes can open every PostgreSQL connection their pools may want.

Each serving process keeps two pools (``database.pool_size`` doc); ``http.workers`` of them
multiply it. Past the server's ``max_connections`` nothing fails at start: the node serves until
load grows its pools, then answers ``service_not_available`` to request after request ("too many
clients already"). Said at start, with the figures, it is a setting to change, not an outage.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.storage.engine import POOL_OVERFLOW

log = logging.getLogger("lwork.storage")

_ALLOWED = text(
    "SELECT current_setting('max_connections')::int,"
    " current_setting('superuser_reserved_connections')::int"
    " + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int"
)


def connections_per_process(pool_size: int) -> int:
    """The most one serving process opens: the shared pool with its overflow, and the push
    mailboxes' pool of ``pool_size``."""
    return 2 * pool_size + POOL_OVERFLOW


def fitting_pool_size(allowed: int, processes: int) -> int:
    """The largest ``database.pool_size`` with which ``processes`` stay within ``allowed``
    connections (0: none does)."""
    return max(0, (allowed // processes - POOL_OVERFLOW) // 2)


def over_budget(maximum: int, reserved: int, processes: int, pool_size: int) -> str | None:
    """What to tell the operator when ``processes`` may open more connections than a server
    with ``max_connections`` ``maximum`` (``reserved`` of them for superusers) allows."""
    allowed = maximum - reserved
    need = processes * connections_per_process(pool_size)
    if need <= allowed:
        return None
    fitting = fitting_pool_size(allowed, processes)
    if fitting >= 1:
        advice = f"lower database.pool_size to {fitting} or less"
    else:
        advice = "run fewer http.workers"
    return (
        f"this node may open {need} PostgreSQL connections ({processes} process(es) x "
        f"(2 x database.pool_size {pool_size} + {POOL_OVERFLOW})) but the server allows "
        f"{allowed} (max_connections {maximum} - {reserved} reserved), before any other node's: "
        f"under load, requests would answer service_not_available. To fix: {advice}, raise "
        "max_connections, or put PgBouncer in front."
    )


async def server_limits(engine: AsyncEngine) -> tuple[int, int]:
    """PostgreSQL's ``max_connections`` and the connections of it kept for superusers."""
    async with engine.connect() as conn:
        maximum, reserved = (await conn.execute(_ALLOWED)).one()
    return int(maximum), int(reserved)


async def check_connection_budget(engine: AsyncEngine, processes: int, pool_size: int) -> None:
    """Log an error at start when this node's pools can outgrow PostgreSQL's connections."""
    if engine.dialect.name != "postgresql":
        return
    maximum, reserved = await server_limits(engine)
    advice = over_budget(maximum, reserved, processes, pool_size)
    if advice is not None:
        log.error("database: %s", advice)
