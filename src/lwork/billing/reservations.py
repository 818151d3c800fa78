"""Balance reservations of live paid calls, in the database so that every node sees them.

Theory of operation (CONTRACT §8, "parallel calls never overdraw"). A paid call holds one
reservation row from its start until its record is charged: first the price of its first
minute (so that a second call cannot start on the same last coins), from its answer a *grant* of
talk time. A grant is what the balance pays *after* every other reservation of the account, but
at most a chunk more than the call was granted before (``billing.grant_minutes``), as prepaid
credit control grants quota: a call re-asks before its grant runs out, so one long call does not
lock the whole balance and a second call of the same account can still start and talk. The
call reserves its grant; the charge at the end never exceeds it (the call is hung up at it
unless a new grant came), so the charges of any number of parallel calls add up to at most the
balance. Every operation runs in the ledger's transaction discipline: the
account's balance row is locked first (SQLite: the write lock; PostgreSQL: ``FOR UPDATE``), so
the reservations of one account change one transaction at a time, whichever node asks.

A reservation is heart-beaten with its node's open records (``calls.records_store``); a dead
node's are dropped by the node that takes over its records. Each operation is one unit of work
(``storage.units``): one hop to the database whatever its statements.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore, lock_balance
from lwork.billing.rating import Reserved, Tariff, reserve, spendable
from lwork.storage.tables import reservations


class Refusal(enum.Enum):
    POOR = "the balance (after the account's other live calls) does not pay the first minute"
    TOO_MANY = "the account has its most concurrent paid calls already"


@dataclass(frozen=True, slots=True)
class TalkGrant:
    minutes: int
    """Minutes each answered leg may talk in all, counted from the call's last paid answer."""
    final: bool
    """The balance pays no more than this (after the other calls): do not ask again."""


class ReservationStore:
    def __init__(self, engine: AsyncEngine, ledger: LedgerStore) -> None:
        self._engine = engine
        self._units = ledger.units

    async def hold(
        self,
        id_: str,
        uuid: str,
        tariff: Tariff,
        legs: int,
        max_calls: int,
        owner: str,
        now: float,
    ) -> Refusal | None:
        """Reserve the first minute of ``legs`` legs for call ``id_`` (again: a no-op)."""
        return await self._units.run(_hold, id_, uuid, tariff, legs, max_calls, owner, now)

    async def cap(
        self,
        id_: str,
        uuid: str,
        tariff: Tariff,
        legs: int,
        owner: str,
        now: float,
        up_to: int | None = None,
    ) -> TalkGrant:
        """Minutes each of ``legs`` legs may talk, after the account's other reservations and
        at most ``up_to`` (None: all the balance pays); the call's reservation becomes that
        grant's worth."""
        return await self._units.run(_cap, id_, uuid, tariff, legs, owner, now, up_to)

    async def release(self, id_: str) -> None:
        await self._units.run(release_in, id_)

    async def held(self, uuid: str) -> dict[str, Reserved]:
        async with self._engine.connect() as conn:
            return await conn.run_sync(_held, uuid)


def _hold(
    conn: Connection,
    id_: str,
    uuid: str,
    tariff: Tariff,
    legs: int,
    max_calls: int,
    owner: str,
    now: float,
) -> Refusal | None:
    balance = lock_balance(conn, uuid, now)
    held = _held(conn, uuid)
    if id_ in held:
        return None
    if len(held) >= max_calls:
        return Refusal.TOO_MANY
    others = sum(held.values(), Reserved())
    if tariff.affordable_minutes(spendable(balance, others)) < legs:
        return Refusal.POOR
    first = reserve(tariff, legs)
    conn.execute(_RESERVE, _row(id_, uuid, first, owner, now))
    return None


def _cap(
    conn: Connection,
    id_: str,
    uuid: str,
    tariff: Tariff,
    legs: int,
    owner: str,
    now: float,
    up_to: int | None,
) -> TalkGrant:
    balance = lock_balance(conn, uuid, now)
    held = _held(conn, uuid)
    others = sum((r for key, r in held.items() if key != id_), Reserved())
    affordable = tariff.affordable_minutes(spendable(balance, others)) // legs
    minutes = affordable if up_to is None else min(affordable, up_to)
    mine = reserve(tariff, minutes * legs)
    if id_ in held:
        conn.execute(_RESIZE, {"r_id": id_, "cents": mine.cents, "minutes": mine.minutes,
                               "heartbeat_at": now})  # fmt: skip
    else:  # taken away meanwhile (a sweep after a long database outage): hold again
        conn.execute(_RESERVE, _row(id_, uuid, mine, owner, now))
    return TalkGrant(minutes, final=minutes >= affordable)


def release_in(conn: Connection, id_: str) -> None:
    """Drop the reservation ``id_`` in the caller's transaction."""
    conn.execute(_RELEASE, {"r_id": id_})


def _row(id_: str, uuid: str, reserved: Reserved, owner: str, now: float) -> dict[str, object]:
    return {"id": id_, "uuid": uuid, "cents": reserved.cents, "minutes": reserved.minutes,
            "owner": owner, "heartbeat_at": now}  # fmt: skip


def _held(conn: Connection, uuid: str) -> dict[str, Reserved]:
    rows = conn.execute(_HELD, {"r_uuid": uuid})
    return {row.id: Reserved(row.cents, row.minutes) for row in rows}


# Every paid call runs these: built once (see ``storage.units``).
_HELD = select(reservations.c.id, reservations.c.cents, reservations.c.minutes).where(
    reservations.c.uuid == bindparam("r_uuid")
)
_RESERVE = reservations.insert()
_RESIZE = update(reservations).where(reservations.c.id == bindparam("r_id"))
"""Sets the columns its parameters name."""
_RELEASE = delete(reservations).where(reservations.c.id == bindparam("r_id"))
