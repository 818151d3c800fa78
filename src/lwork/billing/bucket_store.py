"""Package minute buckets in the database (``minute_buckets``), read and changed inside the
ledger's transactions: the caller holds the account's balance lock (``LedgerStore``), so the
buckets of one account change one transaction at a time.

Reading and taking run in the calls' units of work (``storage.units``): plain functions of a
synchronous connection, which async code runs with ``AsyncConnection.run_sync``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lwork.billing.buckets import Bucket, Grant, consume
from lwork.storage.tables import minute_buckets

# Read by every paid call's reservation and charge: built once (see ``storage.units``).
_WITH_MINUTES = select(
    minute_buckets.c.id,
    minute_buckets.c.minutes_left,
    minute_buckets.c.valid_from,
    minute_buckets.c.expires_at,
).where(minute_buckets.c.uuid == bindparam("b_uuid"), minute_buckets.c.minutes_left > 0)
# Years of expired leftovers are never read again.
_USABLE = _WITH_MINUTES.where(
    or_(minute_buckets.c.expires_at.is_(None), minute_buckets.c.expires_at > bindparam("b_at"))
)
_TAKE = (
    update(minute_buckets)
    .where(minute_buckets.c.id == bindparam("b_id"))
    .values(minutes_left=minute_buckets.c.minutes_left - bindparam("b_amount"))
)


def buckets_of(conn: Connection, uuid: str, at: float | None = None) -> list[Bucket]:
    """The account's buckets that still hold minutes: those not expired at ``at``, or (None)
    all of them."""
    rows = (
        conn.execute(_WITH_MINUTES, {"b_uuid": uuid})
        if at is None
        else conn.execute(_USABLE, {"b_uuid": uuid, "b_at": at})
    )
    return [Bucket(row.id, row.minutes_left, row.valid_from, row.expires_at) for row in rows]


def grant(conn: Connection, grants: Sequence[tuple[str, str, Grant]]) -> None:
    """New buckets: (account, the crediting ledger ref, its dated minutes) each, in one
    statement."""
    rows = [
        {"uuid": uuid, "ref": ref, "granted": item.minutes, "minutes_left": item.minutes,
         "valid_from": item.valid_from, "expires_at": item.expires_at}
        for uuid, ref, item in grants if item.minutes > 0
    ]  # fmt: skip
    if rows:
        conn.execute(minute_buckets.insert(), rows)


def take(conn: Connection, uuid: str, minutes: int, at: float) -> int:
    """Take up to ``minutes`` from the buckets usable at ``at``, expiring first; how many
    were taken."""
    taken = consume(buckets_of(conn, uuid, at), minutes, at)
    for bucket_id, amount in taken:
        conn.execute(_TAKE, {"b_id": bucket_id, "b_amount": amount})
    return sum(amount for _, amount in taken)


async def take_back(conn: AsyncConnection, uuid: str, ref: str, up_to: int | None = None) -> int:
    """Take back up to ``up_to`` (None: all) of the minutes the credit ``ref`` granted that its
    buckets still hold, expired or not, latest-expiring first: a refund takes the periods the
    buyer has not reached before the one in use. How many were taken; what the refund asked
    for less this is what calls used (its shortfall)."""
    query = (
        select(minute_buckets.c.id, minute_buckets.c.minutes_left)
        .where(minute_buckets.c.uuid == uuid, minute_buckets.c.ref == ref,
               minute_buckets.c.minutes_left > 0)
        .order_by(minute_buckets.c.expires_at.is_(None).desc(),
                  minute_buckets.c.expires_at.desc(), minute_buckets.c.id.desc())
    )  # fmt: skip
    taken = 0
    for row in (await conn.execute(query)).all():
        amount = row.minutes_left if up_to is None else min(row.minutes_left, up_to - taken)
        if amount <= 0:
            break
        await conn.execute(_TAKE, {"b_id": row.id, "b_amount": amount})
        taken += amount
    return taken
