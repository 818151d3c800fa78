"""The console of `lwork serve` with ``http.workers = 2`` and no Redis (issue #16): whichever
worker serves the live-calls page or its event stream lists the calls of both, each row naming
its worker, and a hang-up through one worker ends a call the other holds. The workers ask each
other over their local hub, only while someone watches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from test_console_cluster import add_operator
from test_http_workers import M, Served, environment, register, serve

from fakes.operator_browser import csrf_of, sign_in
from fakes.sms_gateway import SmsGateway

CALLERS = {0: ("13800000001", "13900000001"), 1: ("13800000002", "13900000002")}


async def answered_call(served: Served, gateway: SmsGateway, worker: int) -> str:
    """A p2p call made through ``worker`` (so it lives there), answered: its session id."""
    caller, callee = CALLERS[worker]
    here = await served.pinned(worker)
    await register(here, here, gateway, caller, f"{caller}-phone")
    await register(here, here, gateway, callee, f"{callee}-phone")
    poll = {"acc": callee, "device_id": f"{callee}-phone", "clidata": "c"}
    polled = await served.held_on(worker, await served.pinned(worker), poll)
    started = (await here.post(M + "voip/calls", json={
        "user_id": caller, "callee_phone": callee, "sdp": {"port": 40000},
        "dev_id": f"{caller}-phone", "type": "p2p"})).json()  # fmt: skip
    assert started["session_id"].startswith(f"n1-w{worker}@@"), started
    opdata = (await polled).json()["data"][0]["opdata"]
    answer = {"opdata": opdata, "sdp": {"port": 40002}}
    assert (await here.post(M + "p2p_answer", json=answer)).json()["status"] == "ok"
    return str(started["session_id"])


async def console_on(served: Served, worker: int, cookies: httpx.Cookies) -> httpx.AsyncClient:
    """A signed-in operator's browser whose one connection is served by ``worker``."""
    client = await served.pinned(worker)
    client.cookies = cookies
    return client


async def one_snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    async with client.stream("GET", "/admin/calls/events") as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                found: dict[str, Any] = json.loads(line[6:])
                return found
    raise AssertionError("the event stream ended early")


async def status(served: Served, sid: str) -> str:
    r = await served.anywhere().get(M + "voip/calls", params={"session_id": sid})
    return str(r.json()["peer_status"])


async def test_each_workers_console_lists_and_hangs_up_the_others_calls(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'lwork.db'}"  # the CLI's too
    env = environment(sms_gateway, LWORK_CALLS__P2P_FALLBACK_S="60",
                      LWORK_DATABASE__URL=database)  # fmt: skip
    async with serve(tmp_path, env) as served:
        add_operator(env, tmp_path, "alice", "admin")
        signer = served.anywhere()
        assert (await sign_in(signer, "alice")).status_code == 303
        sids = {worker: await answered_call(served, sms_gateway, worker) for worker in (0, 1)}

        for worker in (0, 1):
            console = await console_on(served, worker, signer.cookies)
            page = await console.get("/admin/calls")
            assert (await console.get("/metrics")).json()["worker"] == worker  # still there
            for other in (0, 1):
                assert sids[other] in page.text, (worker, other)
                assert f'<td class="node">n1-w{other}</td>' in page.text
            seen = await one_snapshot(console)  # the stream ends this connection
            assert (seen["total"], seen["partial"]) == (2, False), seen
            assert {(row["sid"], row["node"]) for row in seen["calls"]} == {
                (sids[0], "n1-w0"), (sids[1], "n1-w1"),
            }  # fmt: skip

        # worker 1's console ends the call worker 0 holds; worker 1's own call goes on
        console = await console_on(served, 1, signer.cookies)
        page = await console.get("/admin/calls")
        hangup = {"csrf": csrf_of(page), "sid": sids[0]}
        r = await console.post("/admin/calls/hangup", data=hangup)
        assert (r.status_code, r.headers["location"]) == (303, "/admin/calls?done=hung_up")
        assert (await console.get("/metrics")).json()["worker"] == 1
        assert await status(served, sids[0]) == "release"
        assert await status(served, sids[1]) == "p2p_hookoff"
        console = await console_on(served, 0, signer.cookies)
        seen = await one_snapshot(console)
        assert (seen["total"], [row["sid"] for row in seen["calls"]]) == (1, [sids[1]])
