"""The audit trail page: the newest actions of the console, the BOSS and the CLI (one trail),
of one account if asked, newest first."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lwork.admin.cdr_filter import FilterError, number
from lwork.admin.pages import local_time, render
from lwork.admin.web import Console
from lwork.observability import mask_numbers

SHOWN = 200


class AuditPage:
    def __init__(self, console: Console, zone: ZoneInfo) -> None:
        self.console = console
        self.zone = zone
        self.mask = not console.gate.settings.full_numbers

    def routes(self) -> list[Route]:
        return [Route("/audit", self.console.guarded(self.page), methods=["GET"])]

    async def page(self, request: Request) -> Response:
        gate = self.console.gate
        visitor = await gate.reader(request)
        lang = gate.lang(request)
        context: dict[str, Any] = {
            "who": visitor.operator, "csrf": visitor.csrf, "section": "audit",
            "here": "/admin/audit", "problem": None, "entries": [],
            "account": request.query_params.get("account", ""),
        }  # fmt: skip
        try:
            account = number(request.query_params, "account")
        except FilterError as exc:
            context["problem"] = str(exc)
            return render("audit.html", lang, 400, **context)
        show = mask_numbers if self.mask else str
        entries = await self.console.audit.entries(account or None, SHOWN)
        context["entries"] = [
            {"at": local_time(e.at, self.zone),
             "actor": e.actor, "action": e.action, "account": show(e.account or ""),
             "result": e.result,
             "detail": show(json.dumps(e.detail, ensure_ascii=False, sort_keys=True))}
            for e in reversed(entries)
        ]  # fmt: skip
        return render("audit.html", lang, **context)
