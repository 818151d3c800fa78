"""The orders page: orders by creation date, account, state and provider, newest first, paged
by keyset (created, payid). An administrator refunds a paid order from its row
(``order_refunds.py``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lwork.admin.cdr_filter import FilterError, cursor, date_range, number
from lwork.admin.gate import Visitor
from lwork.admin.pages import local_time, render
from lwork.admin.web import Console
from lwork.observability import mask_numbers
from lwork.payments.service import PAY_TYPES, STATES
from lwork.storage.tables import orders

PAGE_SIZE = 50
_PAYID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True)
class OrderFilter:
    first: dt.date
    last: dt.date
    account: str = ""
    state: str = ""
    pay_type: str = ""
    before: tuple[float, str] | None = None

    def query(self, **changes: str) -> str:
        params = {
            "from": self.first.isoformat(), "to": self.last.isoformat(),
            "account": self.account, "state": self.state, "pay_type": self.pay_type,
        }  # fmt: skip
        return urlencode({k: v for k, v in (params | changes).items() if v})


def parse_orders_filter(params: Mapping[str, str], today: dt.date) -> OrderFilter:
    """The filter of a query string; ``FilterError`` naming the first bad field."""
    first, last = date_range(params, today)
    account = number(params, "account")
    state = params.get("state", "").strip()
    if state and state not in STATES:
        raise FilterError("state", "one of " + ", ".join(STATES))
    pay_type = params.get("pay_type", "").strip()
    if pay_type and pay_type not in PAY_TYPES:
        raise FilterError("pay_type", "one of " + ", ".join(PAY_TYPES))
    return OrderFilter(first, last, account, state, pay_type, cursor(params))


class OrderPages:
    def __init__(
        self, console: Console, engine: AsyncEngine, zone: ZoneInfo,
        day_start: Callable[[dt.date], float],
    ) -> None:  # fmt: skip
        self.console = console
        self.engine = engine
        self.zone = zone
        self.day_start = day_start
        self.mask = not console.gate.settings.full_numbers

    def routes(self) -> list[Route]:
        return [Route("/orders", self.console.guarded(self.page), methods=["GET"])]

    def when(self, at: float | None) -> str:
        return local_time(at, self.zone)

    async def owner(self, payid: str) -> str | None:
        """The account that placed order ``payid`` (for the audit trail), if it exists."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(orders.c.uuid).where(orders.c.payid == payid))
        return str(found) if found is not None else None

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.console.gate.wall(), self.zone).date()

    async def page(self, request: Request) -> Response:
        visitor = await self.console.gate.reader(request)
        params = request.query_params
        notice = ""
        if params.get("done") == "refunded" and _PAYID.match(params.get("payid", "")):
            notice = params["payid"]
        return await self.show(request, visitor, params, refunded=notice)

    async def show(
        self, request: Request, visitor: Visitor, params: Mapping[str, str], status: int = 200,
        refunded: str = "", problem: str | None = None,
    ) -> Response:  # fmt: skip
        """The orders the filter ``params`` picks; ``refunded``: the order a refund just gave
        back; ``problem``: why the change asked for did not happen."""
        gate = self.console.gate
        lang = gate.lang(request)
        context: dict[str, Any] = {
            "who": visitor.operator, "csrf": visitor.csrf, "section": "orders",
            "here": "/admin/orders", "params": dict(params), "problem": None,
            "rows": [], "next_query": None, "first_query": None, "states": STATES,
            "pay_types": PAY_TYPES, "refunded": refunded, "action_problem": problem,
            "back": "",
        }  # fmt: skip
        try:
            wanted = parse_orders_filter(params, self.today())
        except FilterError as exc:
            context["problem"] = str(exc)
            return render("orders.html", lang, 400, **context)
        after = wanted.last + dt.timedelta(days=1)
        query = select(orders).where(
            orders.c.created_at >= self.day_start(wanted.first),
            orders.c.created_at < self.day_start(after),
        )
        if wanted.account:
            query = query.where(orders.c.uuid == wanted.account)
        if wanted.state:
            query = query.where(orders.c.state == wanted.state)
        if wanted.pay_type:
            query = query.where(orders.c.pay_type == wanted.pay_type)
        if wanted.before is not None:
            query = query.where(
                tuple_(orders.c.created_at, orders.c.payid) < tuple_(*wanted.before)
            )
        query = query.order_by(orders.c.created_at.desc(), orders.c.payid.desc())
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.limit(PAGE_SIZE + 1))).all()
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        show = mask_numbers if self.mask else str
        context |= {
            "rows": [
                {"payid": o.payid, "account": show(o.uuid), "product": o.product_id,
                 "pay_type": o.pay_type, "money": f"{o.money / 100:.2f}", "state": o.state,
                 "trade_no": o.trade_no or "", "created": self.when(o.created_at),
                 "paid": self.when(o.paid_at), "note": o.note or "",
                 "refundable": o.state == "paid"}
                for o in rows
            ],
            "params": {"from": wanted.first.isoformat(), "to": wanted.last.isoformat(),
                       "account": wanted.account, "state": wanted.state,
                       "pay_type": wanted.pay_type},
            "next_query": wanted.query(before=f"{rows[-1].created_at!r}~{rows[-1].payid}")
            if more else None,
            "first_query": wanted.query() if wanted.before is not None else None,
            "back": wanted.query(),
        }  # fmt: skip
        return render("orders.html", lang, status, **context)
