"""The call records page: filtered, paged newest first by keyset (start, id), and the CSV
export of the same filter streamed in batches, so neither ever holds the table in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from lwork.admin.cdr_filter import KINDS, CdrFilter, FilterError, parse_filter
from lwork.admin.pages import SECURITY_HEADERS, render
from lwork.admin.web import Console
from lwork.boss.cdrs import csv_header, csv_rows
from lwork.calls.records import boss_view
from lwork.observability import mask_numbers
from lwork.storage.tables import cdrs

PAGE_SIZE = 50
EXPORT_BATCH = 500
_NUMBER_FIELDS = ("account", "caller", "callee", "caller_id")


class CdrPages:
    def __init__(
        self, console: Console, engine: AsyncEngine, zone: ZoneInfo,
        day_start: Callable[[dt.date], float],
    ) -> None:  # fmt: skip
        """``day_start(date)``: when a date of ``billing.timezone`` begins (Unix time)."""
        self.console = console
        self.engine = engine
        self.zone = zone
        self.day_start = day_start
        self.mask = not console.gate.settings.full_numbers

    def routes(self) -> list[Route]:
        g = self.console.guarded
        return [
            Route("/cdrs", g(self.page), methods=["GET"]),
            Route("/cdrs.csv", g(self.export), methods=["GET"]),
        ]

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.console.gate.wall(), self.zone).date()

    def where(self, wanted: CdrFilter) -> list[ColumnElement[bool]]:
        after = wanted.last + dt.timedelta(days=1)
        where = [
            cdrs.c.started_at >= self.day_start(wanted.first),
            cdrs.c.started_at < self.day_start(after),
        ]
        if wanted.account:
            where.append(cdrs.c.uuid == wanted.account)
        if wanted.number:
            number = wanted.number
            where.append(or_(cdrs.c.caller == number, cdrs.c.callee == number,
                             cdrs.c.caller_id == number))  # fmt: skip
        if wanted.kind:
            where.append(cdrs.c.kind == wanted.kind)
        if wanted.end_reason:
            where.append(cdrs.c.end_reason == wanted.end_reason)
        return where

    def view(self, row: dict[str, Any]) -> dict[str, Any]:
        shown = boss_view(row, self.zone)
        if self.mask:
            for field in _NUMBER_FIELDS:
                if shown[field]:
                    shown[field] = mask_numbers(shown[field])
        return shown

    async def latest(self, uuid: str, count: int) -> list[dict[str, Any]]:
        """The newest ``count`` records of account ``uuid`` (the account page's)."""
        query = (
            select(cdrs).where(cdrs.c.uuid == uuid)
            .order_by(cdrs.c.started_at.desc(), cdrs.c.id.desc()).limit(count)
        )  # fmt: skip
        async with self.engine.connect() as conn:
            return [self.view(dict(row._mapping)) for row in await conn.execute(query)]

    async def page(self, request: Request) -> Response:
        gate = self.console.gate
        visitor = await gate.reader(request)
        lang = gate.lang(request)
        context: dict[str, Any] = {
            "who": visitor.operator, "csrf": visitor.csrf, "section": "cdrs", "kinds": KINDS,
            "here": "/admin/cdrs", "params": dict(request.query_params), "problem": None,
            "rows": [], "next_query": None, "export_query": None, "first_query": None,
        }  # fmt: skip
        try:
            wanted = parse_filter(request.query_params, self.today())
        except FilterError as exc:
            context["problem"] = str(exc)
            return render("cdrs.html", lang, 400, **context)
        query = select(cdrs).where(*self.where(wanted))
        if wanted.before is not None:
            query = query.where(tuple_(cdrs.c.started_at, cdrs.c.id) < tuple_(*wanted.before))
        query = query.order_by(cdrs.c.started_at.desc(), cdrs.c.id.desc()).limit(PAGE_SIZE + 1)
        async with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query)]
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        if more:
            last = rows[-1]
            context["next_query"] = wanted.query(before=f"{last['started_at']!r}~{last['id']}")
        context |= {
            "rows": [self.view(row) for row in rows], "export_query": wanted.query(),
            "params": {"from": wanted.first.isoformat(), "to": wanted.last.isoformat(),
                       "account": wanted.account, "number": wanted.number, "kind": wanted.kind,
                       "end_reason": wanted.end_reason},
            "first_query": wanted.query() if wanted.before is not None else None,
        }  # fmt: skip
        return render("cdrs.html", lang, **context)

    async def export(self, request: Request) -> Response:
        gate = self.console.gate
        visitor = await gate.reader(request)
        try:
            wanted = parse_filter(request.query_params, self.today())
        except FilterError as exc:
            return Response(f"{exc}\n", 400, media_type="text/plain", headers=SECURITY_HEADERS)
        where = self.where(wanted)
        await self.console.record(visitor, "cdr_export", {"filter": wanted.query()}, "ok")

        async def batches() -> AsyncIterator[bytes]:
            yield csv_header()
            cursor: tuple[float, str] | None = None
            while True:
                query = select(cdrs).where(*where)
                if cursor is not None:
                    query = query.where(tuple_(cdrs.c.started_at, cdrs.c.id) > tuple_(*cursor))
                query = query.order_by(cdrs.c.started_at, cdrs.c.id).limit(EXPORT_BATCH)
                async with self.engine.connect() as conn:
                    rows = [dict(row._mapping) for row in await conn.execute(query)]
                if not rows:
                    return
                cursor = (rows[-1]["started_at"], rows[-1]["id"])
                yield csv_rows([self.view(row) for row in rows])
                if len(rows) < EXPORT_BATCH:
                    return

        name = f"cdrs-{wanted.first.isoformat()}-{wanted.last.isoformat()}.csv"
        headers = {**SECURITY_HEADERS, "content-disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(batches(), media_type="text/csv; charset=utf-8", headers=headers)
