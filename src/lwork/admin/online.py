"""Who is online: app sessions that long-polled within ``presence.window_s`` (on any node: the
polls' times are in the database), latest first."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lwork.admin.pages import local_time, render
from lwork.admin.web import Console
from lwork.observability import mask_numbers
from lwork.storage.tables import sessions

SHOWN = 200


class OnlinePage:
    def __init__(
        self, console: Console, engine: AsyncEngine, window_s: float, zone: ZoneInfo
    ) -> None:
        self.console = console
        self.engine = engine
        self.window_s = window_s
        self.zone = zone
        self.mask = not console.gate.settings.full_numbers

    def routes(self) -> list[Route]:
        return [Route("/online", self.console.guarded(self.page), methods=["GET"])]

    async def page(self, request: Request) -> Response:
        gate = self.console.gate
        visitor = await gate.reader(request)
        since = gate.wall() - self.window_s
        live = (sessions.c.ended_at.is_(None), sessions.c.last_poll > since)
        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).where(*live))).scalar_one()
            rows = (await conn.execute(
                select(sessions).where(*live).order_by(sessions.c.last_poll.desc()).limit(SHOWN)
            )).all()  # fmt: skip
        show = mask_numbers if self.mask else str
        online: list[dict[str, Any]] = [
            {"account": show(row.uuid), "device": row.device_id, "os": row.os_type,
             "poll": local_time(row.last_poll, self.zone),
             "poll_ip": row.poll_ip or ""}
            for row in rows
        ]  # fmt: skip
        return render(
            "online.html", gate.lang(request), who=visitor.operator, csrf=visitor.csrf,
            here="/admin/online", section="online", total=total, online=online,
            window_s=int(self.window_s),
        )  # fmt: skip
