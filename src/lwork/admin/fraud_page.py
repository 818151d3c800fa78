"""The fraud alarms page: the velocity alarms of the last days and the blocks they hold
(``fraud/``), newest first, the ones still blocking marked; an administrator ends a block from
its row (audited), as ``lwork fraud unblock`` does. Subjects are account numbers or number
ranges, masked like every number of the console unless ``admin.full_numbers``; the form names
the alarm by its row, never by the number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lwork.admin.gate import Refused, Visitor, read_form
from lwork.admin.pages import SECURITY_HEADERS, local_time, render
from lwork.admin.web import Console
from lwork.fraud.store import FraudStore
from lwork.observability import mask_numbers

SHOWN_DAYS = 7
"""Alarms raised this many days back are listed (older ones only while they still block)."""


class FraudPage:
    def __init__(
        self, console: Console, store: FraudStore, zone: ZoneInfo, wall: Callable[[], float]
    ) -> None:
        self.console = console
        self.store = store
        self.zone = zone
        self.wall = wall
        self.mask = not console.gate.settings.full_numbers

    def routes(self) -> list[Route]:
        g = self.console.guarded
        return [
            Route("/fraud", g(self.page), methods=["GET"]),
            Route("/fraud/unblock", g(self.unblock), methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        visitor = await self.console.gate.reader(request)
        done = request.query_params.get("unblocked", "")
        return await self.show(request, visitor, unblocked=done.isdigit())

    async def show(
        self, request: Request, visitor: Visitor, status: int = 200, unblocked: bool = False,
        problem: str = "",
    ) -> Response:  # fmt: skip
        now = self.wall()
        show = mask_numbers if self.mask else str
        alarms = await self.store.alarms(now - SHOWN_DAYS * 86_400, now, active_only=False)
        rows: list[dict[str, Any]] = [
            {"id": alarm.id, "at": local_time(alarm.created_at, self.zone), "kind": alarm.kind,
             "subject": show(alarm.subject), "facts": show(alarm.facts), "node": alarm.node,
             "blocking": alarm.blocked_until > now,
             "until": local_time(alarm.blocked_until, self.zone)}
            for alarm in sorted(alarms, key=lambda alarm: alarm.created_at, reverse=True)
        ]  # fmt: skip
        return render(
            "fraud.html", self.console.gate.lang(request), status, who=visitor.operator,
            csrf=visitor.csrf, here="/admin/fraud", section="fraud", alarms=rows,
            unblocked=unblocked, problem=problem, days=SHOWN_DAYS,
        )  # fmt: skip

    async def unblock(self, request: Request) -> Response:
        form = await read_form(request)
        gate = self.console.gate
        raw = form.get("alarm", "")[:20]
        try:
            visitor = await gate.changer(request, form)
        except Refused:
            who = await gate.visitor(request)
            await self.console.record(who, "fraud_unblock", {"alarm": raw}, "forbidden")
            raise
        alarm_id = int(raw) if raw.isdigit() and len(raw) < 19 else None
        ended = None if alarm_id is None else await self.store.unblock_alarm(alarm_id, self.wall())
        if ended is None:
            await self.console.record(visitor, "fraud_unblock", {"alarm": raw}, "unknown_alarm")
            problem = f"{gate.translate(request, 'bad_input')}: alarm"
            return await self.show(request, visitor, 404 if alarm_id else 400, problem=problem)
        subject, blocks = ended
        # The trail keeps the subject in full: it is the operator's record of who was let go.
        fields: dict[str, object] = {"alarm": alarm_id, "subject": subject, "blocks_ended": blocks}
        await self.console.record(visitor, "fraud_unblock", fields, "ok")
        return RedirectResponse(f"/admin/fraud?unblocked={blocks}", 303, SECURITY_HEADERS)
