"""The console's live calls: a real p2p call between two simulated apps (real HTTP, AMR over
real UDP through the built-in relay) seen over the server-sent events, hung up by an admin."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from lwork.boss.audit import AuditTrail
from lwork.sim.phone import SimPhone
from lwork.storage.tables import cdrs

from conftest import LiveServer
from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]
APP_PASSWORD = "e10adc3949ba59abbe56e057f20f883e"
ALICE, BOB = "13800000001", "13900000002"
LIVE = {"media": {"relay_mode": "inline", "rtcp_interval_s": 1.0}}


@dataclass
class Call:
    sid: str
    caller: SimPhone
    callee: SimPhone
    callee_sid: str


async def online(server: LiveServer, phone: SimPhone) -> None:
    await phone.request_code()
    await phone.register(server.gateway.last_code(phone.phone), APP_PASSWORD)
    await phone.login(APP_PASSWORD)
    await phone.poll()


@asynccontextmanager
async def live_call(server: LiveServer) -> AsyncIterator[Call]:
    """Alice calls Bob's app, Bob answers, both send AMR until the block ends."""
    quiet: Callable[[str], None] = lambda line: None  # noqa: E731
    async with (
        SimPhone(server.url, ALICE, "alice-phone", quiet) as alice,
        SimPhone(server.url, BOB, "bob-phone", quiet) as bob,
    ):
        await online(server, alice)
        await online(server, bob)
        incoming = asyncio.create_task(bob.wait_for_call())
        started = await alice.call(BOB)
        alice.start_media((started["ip"], started["port"]))
        opdata = await asyncio.wait_for(incoming, 30)
        await bob.ring(opdata)
        answered = await bob.answer(opdata)
        bob.start_media((answered["ip"], answered["port"]))
        yield Call(started["session_id"], alice, bob, answered["session_id"])


async def snapshots(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """The next ``count`` snapshots of the live calls' event stream."""
    found: list[dict[str, Any]] = []
    async with client.stream("GET", "/admin/calls/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "calls":
                found.append(json.loads(line[6:]))
                if len(found) == count:
                    return found
    raise AssertionError("the event stream ended early")


async def test_a_live_call_is_watched_and_hung_up(server_factory: Factory) -> None:
    async with (
        server_factory(**LIVE) as server,
        browser(server.url) as admin,
        browser(server.url) as support,
    ):
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await sign_in(admin, "alice")).status_code == 303
        assert (await sign_in(support, "sam")).status_code == 303
        async with live_call(server) as call:
            seen = await asyncio.wait_for(snapshots(admin, 4), 30)
            assert {s["total"] for s in seen} == {1}
            rows = [s["calls"][0] for s in seen if s["calls"]]
            assert len(rows) == 4 and {r["sid"] for r in rows} == {call.sid}
            first, last = rows[0], rows[-1]
            assert (first["kind"], last["state"]) == ("p2p", "p2p_hookoff")
            # both parties masked as in the logs
            assert (last["caller"], last["callee"]) == ("*******0001", "*******0002")
            assert ALICE not in json.dumps(seen) and BOB not in json.dumps(seen)
            assert last["duration_s"] >= first["duration_s"] + 2  # a snapshot a second
            assert seen[-1]["at"] - seen[0]["at"] >= 2.5
            # the relay's figures arrive and move on
            for _ in range(20):
                row = (await snapshots(admin, 1))[0]["calls"][0]
                if row["mos"] is not None and row["jitter_ms"] is not None:
                    break
            assert row["mos"] is not None and row["mos"] > 4 and row["loss_pct"] == 0.0
            assert row["rtt_ms"] is not None

            page = await admin.get("/admin/calls")
            assert call.sid in page.text and "*******0001" in page.text and ALICE not in page.text
            token = csrf_of(page)
            # refused: a read-only operator, a missing token, a forged one; the call goes on
            support_page = await support.get("/admin/calls")
            assert call.sid in support_page.text and "/admin/calls/hangup" not in support_page.text
            forged = csrf_of(support_page)  # a real token, of another session
            r = await support.post("/admin/calls/hangup", data={"csrf": forged, "sid": call.sid})
            assert r.status_code == 403
            assert (
                await admin.post("/admin/calls/hangup", data={"sid": call.sid})
            ).status_code == 403
            r = await admin.post("/admin/calls/hangup", data={"csrf": forged, "sid": call.sid})
            assert r.status_code == 403
            assert call.sid in server.services.calls.calls

            r = await admin.post("/admin/calls/hangup", data={"csrf": token, "sid": call.sid})
            assert (r.status_code, r.headers["location"]) == (303, "/admin/calls?done=hung_up")
            assert call.sid not in server.services.calls.calls
            assert (await call.caller.status(call.sid))["peer_status"] == "release"
            page = await admin.get(r.headers["location"])
            assert "通话已挂断" in page.text and call.sid not in page.text
            after = (await snapshots(admin, 1))[0]
            assert (after["total"], after["calls"]) == (0, [])
            r = await admin.post("/admin/calls/hangup", data={"csrf": token, "sid": call.sid})
            assert r.headers["location"] == "/admin/calls?done=call_gone"

        async with server.services.engine.connect() as conn:
            records = (await conn.execute(select(cdrs).where(cdrs.c.id.startswith(call.sid)))).all()
        assert records and {r.end_reason for r in records} == {"admin_hangup"}
        assert all(r.ended_at is not None for r in records)
        entries = await AuditTrail(server.services.engine).entries()
        changes = [
            (e.actor, e.action, e.result, e.account) for e in entries if e.action == "hangup"
        ]
        assert changes == [
            ("console:sam", "hangup", "forbidden", None),
            ("console:alice", "hangup", "forbidden", None),
            ("console:alice", "hangup", "forbidden", None),
            ("console:alice", "hangup", "ok", ALICE),
            ("console:alice", "hangup", "no_such_call", None),
        ]


async def test_numbers_are_shown_whole_when_allowed(server_factory: Factory) -> None:
    async with (
        server_factory(admin={"full_numbers": True}, **LIVE) as server,
        browser(server.url) as admin,
    ):
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        assert (await sign_in(admin, "alice")).status_code == 303
        async with live_call(server):
            row = (await snapshots(admin, 1))[0]["calls"][0]
            assert (row["caller"], row["callee"], row["account"]) == (ALICE, BOB, ALICE)
