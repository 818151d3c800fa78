"""Call records in the database: opened at answer, heart-beaten in one write per node, closed
and charged in one transaction with the ledger.

Closing is the atomic claim: ``UPDATE cdrs ... WHERE id = :id AND ended_at IS NULL`` succeeds
for exactly one closer (PostgreSQL's row lock makes a second one wait and then find the record
closed; SQLite has one writer), and the ledger's unique ``cdr:<id>`` reference would refuse a
second charge anyway. So a record is closed and charged once whether its own node, the same
node restarted, or another node closes it, and only that closer sends BYE for its dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore, lock_balance
from lwork.billing.ledger import charge as ledger_charge
from lwork.billing.rating import Charge, Tariff, billable_minutes
from lwork.billing.reservations import release_in
from lwork.calls.records import CallRecord, Quality
from lwork.storage.tables import cdr_outbox, cdrs, reservations

log = logging.getLogger("lwork.calls.records")


class RecordStore:
    def __init__(
        self,
        engine: AsyncEngine,
        ledger: LedgerStore,
        outbox: bool = False,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        """``outbox``: every record closed is also queued for the BOSS's webhook, in the same
        transaction; ``on_closed`` is told after each such commit (the sender wakes)."""
        self._engine = engine
        self._ledger = ledger
        self._outbox = outbox
        self._on_closed = on_closed

    async def open(self, record: CallRecord, owner: str, now: float) -> None:
        """Insert the record of a leg that has just answered, open (no end yet)."""
        await self._ledger.units.run(_open, record, owner, now)

    async def close(
        self, record: CallRecord, tariff: Tariff | None, now: float, release: str | None = None
    ) -> Charge | None:
        """Close ``record`` (insert it closed if it was never opened) and charge it at
        ``tariff`` (None: free); drop the reservation ``release``. None: closed before."""
        try:
            charge = await self._ledger.units.run(
                _close, record, tariff, now, release, self._outbox
            )
        except IntegrityError:
            log.info("record %s was closed before", record.id)
            return None
        if self._outbox and self._on_closed is not None:
            self._on_closed()
        if charge.forgiven_cents or charge.forgiven_minutes:
            log.warning("record %s: the balance of %s lacked %d cents / %d min", record.id,
                        record.account, charge.forgiven_cents, charge.forgiven_minutes)  # fmt: skip
        return charge

    async def heartbeat(self, owner: str, now: float) -> None:
        """One sign of life for all of ``owner``'s open records and reservations."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(cdrs)
                .where(cdrs.c.owner == owner, cdrs.c.ended_at.is_(None))
                .values(heartbeat_at=now)
            )
            await conn.execute(
                update(reservations).where(reservations.c.owner == owner).values(heartbeat_at=now)
            )

    async def orphans(self, owner: str, node: str, lease_s: float, now: float) -> list[CallRecord]:
        """Open records nobody heart-beats any more: another owner's beyond the lease, or an
        earlier life of this node's (it crashed and came back under the same name). Closed at
        their last heartbeat. Drops those owners' reservations too."""
        cutoff = now - lease_s
        query = select(cdrs).where(cdrs.c.ended_at.is_(None), _orphaned(cdrs, owner, node, cutoff))
        async with self._engine.begin() as conn:
            rows = [row._mapping for row in await conn.execute(query)]
            await conn.execute(
                reservations.delete().where(_orphaned(reservations, owner, node, cutoff))
            )
        return [_orphan(row) for row in rows]

    async def rows(self, uuid: str, start: float, end: float) -> list[dict[str, Any]]:
        """The account's records started in [start, end), oldest first."""
        query = (
            select(cdrs)
            .where(cdrs.c.uuid == uuid, cdrs.c.started_at >= start, cdrs.c.started_at < end)
            .order_by(cdrs.c.started_at)
        )
        async with self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]


# Every answered leg opens a record and every call closes its records: built once (see
# ``storage.units``). An insert or update without values writes the columns its parameters name.
_RECORD_ROW = cdrs.insert()
_CLOSE_OPEN_RECORD = update(cdrs).where(cdrs.c.id == bindparam("r_id"), cdrs.c.ended_at.is_(None))
_QUEUE_FOR_BOSS = cdr_outbox.insert()


def _open(conn: Connection, record: CallRecord, owner: str, now: float) -> None:
    conn.execute(
        _RECORD_ROW,
        {
            **_identity(record),
            "minutes": 0,
            "cost": 0,
            "end_reason": "",
            "owner": owner,
            "heartbeat_at": now,
            "dialog": record.dialog,
        },
    )


def _close(
    conn: Connection,
    record: CallRecord,
    tariff: Tariff | None,
    now: float,
    release: str | None,
    outbox: bool,
) -> Charge:
    assert record.ended_at is not None
    minutes = billable_minutes(record.ended_at - record.answered_at) if (
        record.answered_at is not None and tariff is not None) else 0  # fmt: skip
    closing: dict[str, Any] = {
        "ended_at": record.ended_at, "billsec": record.billsec, "minutes": minutes,
        "end_reason": record.end_reason[:64], "sip_status": record.sip_status,
        **_quality(record.quality), "heartbeat_at": None, "dialog": None,
    }  # fmt: skip
    charge = Charge()
    paid = tariff is not None and minutes > 0
    # The balance first (the lock every change of the account queues on), then the claim: a
    # second closer waits here and then finds the record closed.
    if paid:
        assert tariff is not None
        # Minutes valid at the answer pay the call (the cap came from them).
        before = lock_balance(conn, record.account, now, at=record.answered_at)
        charge = tariff.charge(before, minutes)
    closing |= {
        "cost": charge.minutes if tariff is not None and tariff.pays_minutes else charge.cents,
        "charge_coins": charge.coins, "charge_gift_coins": charge.gift_coins,
        "charge_minutes": charge.minutes,
        "forgiven": charge.forgiven_cents + charge.forgiven_minutes,
    }  # fmt: skip
    claimed = 0
    if record.answered_at is not None:
        claimed = conn.execute(_CLOSE_OPEN_RECORD, {**closing, "r_id": record.id}).rowcount
    if not claimed:  # never opened (unanswered, or the open failed): IntegrityError if closed
        conn.execute(_RECORD_ROW, {**_identity(record), **closing})
    if paid:  # if it was closed already, this raises too
        ledger_charge(conn, record.account, "cdr:" + record.id, before, charge,
                      f"{minutes} min to {record.callee}", now, at=record.answered_at)  # fmt: skip
    if release is not None:
        release_in(conn, release)
    if outbox:
        queued = {"cdr_id": record.id, "uuid": record.account, "created_at": now}
        conn.execute(_QUEUE_FOR_BOSS, {**queued, "attempts": 0, "next_at": now})
    return charge


def _orphaned(table: Any, owner: str, node: str, cutoff: float) -> Any:
    return and_(
        table.c.owner != owner,
        or_(table.c.heartbeat_at < cutoff, table.c.owner.startswith(node + "/", autoescape=True)),
    )


def _orphan(row: Any) -> CallRecord:
    last_sign = row["heartbeat_at"] if row["heartbeat_at"] is not None else row["answered_at"]
    return CallRecord(
        id=row["id"], account=row["uuid"], kind=row["kind"], caller=row["caller"] or "",
        callee=row["callee"], caller_id=row["caller_id"] or "",
        started_at=row["started_at"] or row["answered_at"], answered_at=row["answered_at"],
        ended_at=max(last_sign, row["answered_at"]), end_reason="node_lost", sip_status=200,
        node=row["node"] or "", carrier_codec=row["carrier_codec"], dialog=row["dialog"],
    )  # fmt: skip


def _identity(record: CallRecord) -> dict[str, Any]:
    return {
        "id": record.id, "uuid": record.account, "kind": record.kind, "caller": record.caller,
        "callee": record.callee, "caller_id": record.caller_id, "started_at": record.started_at,
        "answered_at": record.answered_at, "node": record.node,
        "carrier_codec": record.carrier_codec,
    }  # fmt: skip


def _quality(quality: Quality) -> dict[str, float | None]:
    return {"mos": quality.mos, "loss": quality.loss, "jitter_ms": quality.jitter_ms,
            "rtt_ms": quality.rtt_ms}  # fmt: skip
