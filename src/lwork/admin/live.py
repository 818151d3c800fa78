"""The live calls page: one row per call this node carries, refreshed by server-sent events
(a snapshot a second on one endpoint), and the administrator's hang-up.

Rows are built from what the call engine already holds; reading them asks the relay for a
refresh of each call's figures batched with the apps' own status reads (``cached_stats``), so
the page never waits on the relay nor multiplies its queries."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from lwork.admin.cluster_live import PUBLISH_EVERY_S, Board, merge
from lwork.admin.gate import Refused, read_form
from lwork.admin.pages import SECURITY_HEADERS, error_page, render
from lwork.admin.web import Console
from lwork.calls.bridge import CALLEE, CALLER, LOCAL, PHONE, REMOTE
from lwork.calls.engine import CallEngine
from lwork.calls.live import RELAY_TAGS, LiveCall
from lwork.calls.quality import party_stats
from lwork.calls.router import CallRouter
from lwork.observability import mask_numbers

log = logging.getLogger("lwork.admin")

HANGUP_REASON = "admin_hangup"
"""The end reason of a call an administrator hung up, as its records and metrics show it."""
HANGUP_OPERATION = "admin_hangup"
"""The call operation (``CallRouter``) a console runs on the node holding the call."""
MAX_SID = 200
SNAPSHOT_S = 1.0
RECHECK_SESSION_S = 30.0
"""How often a held event stream checks that its session still exists (signed out, expired)."""
MAX_ROWS = 500
"""Calls a snapshot lists (the longest first); it counts them all. A thousand rows cost about
20 ms to build and 260 KB to send."""

_FROM_ROLES = (CALLER, LOCAL, PHONE)
_TO_ROLES = (CALLEE, PHONE, REMOTE)


def _figure(values: list[Any], pick: Callable[[list[float]], float]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return round(pick(numbers), 2) if numbers else None


def call_row(live: LiveCall, now_wall: float, mask: bool) -> dict[str, Any]:
    """What the page shows of one call: the worst figure among its parties for each measure."""
    show = mask_numbers if mask else str
    caller = next((live.numbers[r] for r in _FROM_ROLES if r in live.numbers), "")
    callee = next((live.numbers[r] for r in _TO_ROLES if r in live.numbers and
                   live.numbers[r] != caller), "")  # fmt: skip
    # Every relay leg of the call's shape (a p2p call's fallback phone shares the callee's).
    parties = [party_stats(live.stats, tag) for tag in set(RELAY_TAGS[live.shape].values())]
    answered = min(live.answered_wall.values()) if live.answered_wall else None
    began = answered if answered is not None else live.started_wall
    loss = _figure([p.get("lostrate") for p in parties], max)
    return {
        "sid": live.sid,
        "kind": live.shape.value,
        "state": live.bridge.status().value,
        "account": show(live.account),
        "caller": show(caller),
        "callee": show(callee),
        "answered": answered is not None,
        "duration_s": max(0, int(now_wall - began)) if began else 0,
        "loss_pct": round(loss * 100, 1) if loss is not None else None,
        "jitter_ms": _figure([p.get("jitter") for p in parties], max),
        "rtt_ms": _figure([p.get("rttms") for p in parties], max),
        "mos": _figure([p.get("mos") for p in parties], min),
    }


def snapshot(engine: CallEngine | None, mask: bool) -> tuple[int, list[dict[str, Any]]]:
    """How many calls this node carries, and the rows of the ``MAX_ROWS`` longest."""
    if engine is None:
        return 0, []
    now, wall = engine.now(), engine.wall()
    calls = sorted(engine.calls.values(), key=lambda live: live.started_wall)[:MAX_ROWS]
    rows = []
    for live in calls:
        engine.cached_stats(live, now)  # asks for a batched refresh when the view is old
        rows.append(call_row(live, wall, mask))
    rows.sort(key=lambda row: -row["duration_s"])
    return len(engine.calls), rows


def clock_time(at: float, zone: ZoneInfo) -> str:
    """When a snapshot was taken, as the page's "Updated" stamp: ``18:04:18`` in
    ``billing.timezone`` (the zone every other time of the console is shown in)."""
    return dt.datetime.fromtimestamp(at, zone).strftime("%H:%M:%S")


class LiveCalls:
    def __init__(
        self,
        console: Console,
        engine: Callable[[], CallEngine | None],
        zone: ZoneInfo,
        *,
        node: str,
        router: CallRouter | None = None,
        board: Board | None = None,
    ) -> None:
        """``engine()``: the call engine while the server runs (None before start-up);
        ``router``: runs a hang-up on the node holding the call; ``board``: the other nodes'
        (or workers') calls (None: one node, or nodes without a shared Redis)."""
        self.console = console
        self.engine = engine
        self.zone = zone
        self.node = node
        self.router = router
        self.board = board
        self.mask = not console.gate.settings.full_numbers
        self.streams = 0
        self._event = b""
        self._event_at = -1e9
        self._building = asyncio.Lock()
        if router is not None:
            router.register(HANGUP_OPERATION, self._end_here)

    def own(self) -> tuple[int, list[dict[str, Any]]]:
        """This node's snapshot (what it publishes for the other nodes' consoles)."""
        return snapshot(self.engine(), self.mask)

    async def view(self) -> tuple[int, list[dict[str, Any]], bool, bool]:
        """Every node's calls: (total, the ``MAX_ROWS`` longest, whether every node could be
        asked, whether this is the first look in a while: the other nodes publish now)."""
        own = self.own()
        if self.board is None:
            return (*merge(self.node, own, [], MAX_ROWS), True, False)
        others = await self.board.others()
        total, rows = merge(self.node, own, others.snapshots, MAX_ROWS)
        return total, rows, others.reached, others.first_viewer

    async def event(self) -> bytes:
        """The latest snapshot as one server-sent event, made at most once a second whatever
        the number of streams that send it."""
        if self.console.monotonic() - self._event_at < SNAPSHOT_S * 0.9:
            return self._event
        async with self._building:  # one stream builds it, the others wait and share it
            now = self.console.monotonic()
            if now - self._event_at >= SNAPSHOT_S * 0.9:
                total, rows, reached, _ = await self.view()
                at = self.console.gate.wall()
                body = json.dumps(
                    {"at": at, "updated": clock_time(at, self.zone), "total": total,
                     "partial": not reached, "calls": rows},
                    ensure_ascii=False,
                )  # fmt: skip
                self._event, self._event_at = f"event: calls\ndata: {body}\n\n".encode(), now
        return self._event

    def routes(self) -> list[Route]:
        g = self.console.guarded
        return [
            Route("/calls", g(self.page), methods=["GET"]),
            Route("/calls/events", g(self.events), methods=["GET"]),
            Route("/calls/hangup", g(self.hang_up), methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        visitor = await self.console.gate.reader(request)
        notice = request.query_params.get("done", "")
        total, rows, reached, first = await self.view()
        if first:  # the other nodes were idle: they publish within a second of being asked
            await asyncio.sleep(PUBLISH_EVERY_S * 1.2)
            total, rows, reached, _ = await self.view()
        # The page shows the time of the snapshot it was built from until the stream's first.
        updated = clock_time(self.console.gate.wall(), self.zone)
        return render(
            "calls.html", self.console.gate.lang(request), who=visitor.operator,
            csrf=visitor.csrf, here="/admin/calls", section="calls", rows=rows, total=total,
            notice=notice if notice in ("hung_up", "call_gone") else "", updated=updated,
            partial=not reached,
        )  # fmt: skip

    async def events(self, request: Request) -> Response:
        gate = self.console.gate
        visitor = await gate.visitor(request)
        if visitor is None:
            return error_page(gate.lang(request), 401, "forbidden")
        headers = {**SECURITY_HEADERS, "x-accel-buffering": "no"}  # nginx: pass each event on
        if request.method == "HEAD":  # a stream that nobody reads would run until shutdown
            return Response(b"", media_type="text/event-stream", headers=headers)
        if self.streams >= gate.settings.live_streams:
            return error_page(gate.lang(request), 429, "too_many", {"retry-after": "5"})

        async def stream() -> AsyncIterator[bytes]:
            self.streams += 1
            try:
                checked = asyncio.get_running_loop().time()
                while True:
                    yield await self.event()
                    await asyncio.sleep(SNAPSHOT_S)
                    now = asyncio.get_running_loop().time()
                    if now - checked >= RECHECK_SESSION_S:
                        checked = now
                        if await gate.store.session(visitor.session_id, gate.wall()) is None:
                            yield b"event: signed_out\ndata: {}\n\n"
                            return
            except Exception:
                # The answer has begun: no error page can follow. The stream ends and the
                # page's EventSource reconnects (and says so meanwhile).
                log.exception("console: the live calls' stream failed")
            finally:
                self.streams -= 1

        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def _end_here(self, sid: str, args: dict[str, Any]) -> dict[str, Any]:
        """Hang up call ``sid`` if this node holds it (run here, or asked over the bus by the
        console of another node)."""
        engine = self.engine()
        live = engine.calls.get(sid) if engine is not None else None
        if live is None or engine is None:
            return {"ended": False}
        await engine.end(live, HANGUP_REASON)
        self._event_at = -1e9  # the next snapshot is made afresh, without the call
        if self.board is not None:
            try:  # at once, so no console shows the ended call for a second more
                await self.board.publish()
            except Exception as exc:
                log.warning("console: cannot publish live calls after a hang-up: %s", exc)
        return {"ended": True, "account": live.account}

    async def hang_up(self, request: Request) -> Response:
        form = await read_form(request)
        gate = self.console.gate
        try:
            visitor = await gate.changer(request, form)
        except Refused:
            # A refused change is on the trail too: who tried to end which call.
            who = await gate.visitor(request)
            await self.console.record(who, "hangup", {"call": form.get("sid", "")[:MAX_SID]},
                                      "forbidden")  # fmt: skip
            raise
        sid = form.get("sid", "")[:MAX_SID]
        # The node named by the session id holds the call; if it does not answer (gone with
        # its calls) or nothing links the nodes, the call is looked for here.
        if self.router is not None and sid:
            answer = await self.router.run(sid, HANGUP_OPERATION)
        else:
            answer = await self._end_here(sid, {})
        self._event_at = -1e9
        if not isinstance(answer, dict) or not answer.get("ended"):
            await self.console.record(visitor, "hangup", {"call": sid}, "no_such_call")
            return RedirectResponse("/admin/calls?done=call_gone", 303, SECURITY_HEADERS)
        account = answer.get("account")
        await self.console.record(visitor, "hangup", {"call": sid, "account": account}, "ok")
        return RedirectResponse("/admin/calls?done=hung_up", 303, SECURITY_HEADERS)
