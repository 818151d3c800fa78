"""Call records for the BOSS, streamed: any range, in batches by keyset (start, id), so memory
stays flat however many records the range holds. JSON lines, or CSV with a header."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.calls.records import boss_view
from lwork.storage.tables import cdrs

CSV_COLUMNS = (
    "id", "account", "kind", "caller", "callee", "caller_id", "start", "answer", "end",
    "billsec", "minutes", "charge_coins", "charge_gift_coins", "charge_minutes",
    "charge_forgiven", "end_reason", "sip_status", "mos", "loss", "jitter_ms", "rtt_ms", "node",
)  # fmt: skip


class CdrReader:
    def __init__(
        self, engine: AsyncEngine, zone: ZoneInfo, day_start: Callable[[dt.date], float],
        batch: int = 500,
    ) -> None:  # fmt: skip
        """``day_start(date)``: when a date of the billing time zone begins (Unix time)."""
        self._engine = engine
        self._zone = zone
        self._day_start = day_start
        self._batch = batch

    async def records(
        self, account: str | None, start: dt.date, end: dt.date
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Batches of records (as the BOSS reads them) of calls started from ``start`` to
        ``end`` inclusive, oldest first; every account's if ``account`` is None."""
        if end < start:
            raise ValueError("end is before start")
        first = self._day_start(start)
        after = self._day_start(end + dt.timedelta(days=1))
        where = [cdrs.c.started_at >= first, cdrs.c.started_at < after]
        if account is not None:
            where.append(cdrs.c.uuid == account)
        cursor: tuple[float, str] | None = None
        while True:
            query = select(cdrs).where(*where)
            if cursor is not None:
                started, ident = cursor
                # A row value, which both databases walk in the (start, id) index order.
                query = query.where(tuple_(cdrs.c.started_at, cdrs.c.id) > tuple_(started, ident))
            query = query.order_by(cdrs.c.started_at, cdrs.c.id).limit(self._batch)
            async with self._engine.connect() as conn:
                rows = [row._mapping for row in await conn.execute(query)]
            if not rows:
                return
            cursor = (rows[-1]["started_at"], rows[-1]["id"])
            yield [boss_view(dict(row), self._zone) for row in rows]
            if len(rows) < self._batch:
                return


def json_lines(batch: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in batch).encode()


def csv_header() -> bytes:
    return _csv([list(CSV_COLUMNS)])


def csv_rows(batch: list[dict[str, Any]]) -> bytes:
    return _csv([[_flat(row).get(column) for column in CSV_COLUMNS] for row in batch])


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    charge, quality = row["charge"], row["quality"]
    flat: dict[str, Any] = {k: v for k, v in row.items() if k not in ("charge", "quality")}
    flat |= {f"charge_{key}": value for key, value in charge.items()}
    flat |= quality
    return flat


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    return out.getvalue().encode()
