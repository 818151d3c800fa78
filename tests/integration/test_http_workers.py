"""`lwork serve` with ``http.workers = 2``: two worker processes on one port behave as one
service, whichever worker the kernel hands each connection to (issue 17, item 1).

A worker is told apart by the ``worker`` gauge of ``/metrics``. A "pinned" client keeps one
connection open to a known worker, so the test can place a poll on one worker and the request
that should wake it on the other; a client without keep-alive lands anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import httpx

from fakes.nodes import PWD
from fakes.sms_gateway import SmsGateway
from fakes.workers import Served, environment, ready, serve

ALICE, BOB = "13800000001", "13800000002"
M = "/lwork/mobile/"


async def register(
    sender: httpx.AsyncClient,
    client: httpx.AsyncClient,
    gateway: SmsGateway,
    phone: str,
    device: str,
) -> None:
    """The code sent through ``sender``, the registration and login through ``client``."""
    await sender.post("/lwork/sms/auth_code", json={"uuid": phone, "type": "register"})
    body = {"uuid": phone, "device_id": device, "auth_code": gateway.last_code(phone),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await client.post(M + "register", json=body)).json() == {"status": "ok"}
    login = {"acc": phone, "pwd": PWD, "device_id": device}
    assert (await client.post(M + "login", json=login)).json()["status"] == "ok"


async def call_and_kick_across_workers(served: Served, gateway: SmsGateway) -> None:
    """Bob's poll is held on worker 1; alice calls through worker 0 (the call lives there);
    bob answers through worker 1; a login on worker 0 kicks bob's poll on worker 1."""
    on_0, on_1 = await served.pinned(0), await served.pinned(1)
    # a code sent by one worker verifies on the other (one secret key, made before they start)
    await register(on_0, on_1, gateway, ALICE, "alice-phone")
    await register(on_1, on_0, gateway, BOB, "bob-phone")
    bob_poll = {"acc": BOB, "device_id": "bob-phone", "clidata": "c"}
    polled = await served.held_on(1, await served.pinned(1), bob_poll)

    started = (await on_0.post(M + "voip/calls", json={
        "user_id": ALICE, "callee_phone": BOB, "sdp": {"port": 40000},
        "dev_id": "alice-phone", "type": "p2p"})).json()  # fmt: skip
    sid = started["session_id"]
    assert sid.startswith("n1-w0@@"), started
    # the invite, queued by worker 0, woke the poll worker 1 holds
    opdata = (await asyncio.wait_for(polled, 10)).json()["data"][0]["opdata"]
    assert (await on_1.post(M + "p2p_ringing", json={"opdata": opdata})).json() == {"status": "ok"}
    answer = {"opdata": opdata, "sdp": {"port": 40002}}
    answered = (await on_1.post(M + "p2p_answer", json=answer)).json()
    assert answered["status"] == "ok" and answered["session_id"].startswith("n1-w0@@")
    for client in (on_0, on_1):
        r = await client.get(M + "voip/calls", params={"session_id": answered["session_id"]})
        assert r.json()["peer_status"] == "p2p_hookoff"
    # the relay slices of both workers are within media.port_min..port_max
    assert 41000 <= started["port"] <= 41999 and 41000 <= answered["port"] <= 41999
    hung_up = await on_1.delete(M + "voip/calls", params={"session_id": sid})
    assert hung_up.json() == {"status": "ok"}
    r = await on_0.get(M + "voip/calls", params={"session_id": sid})
    assert r.json()["peer_status"] == "release"

    # a login through worker 0 kicks the poll worker 1 holds
    polled = await served.held_on(1, await served.pinned(1), bob_poll)
    login = {"acc": BOB, "pwd": PWD, "device_id": "bob-tablet"}
    assert (await on_0.post(M + "login", json=login)).json()["status"] == "ok"
    kicked = (await asyncio.wait_for(polled, 10)).json()
    assert kicked["data"] == [{"event": "login_otherwhere"}]


async def test_two_workers_serve_one_port_as_one_service(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    env = environment(
        sms_gateway,
        LWORK_SMS__GLOBAL_PER_HOUR="7",  # two registrations, then five more sends at most
    )
    async with serve(tmp_path, env) as served:
        assert len(served.workers()) == 2
        answering = {(await served.anywhere().get("/metrics")).json()["worker"] for _ in range(40)}
        assert answering == {0, 1}
        # a Prometheus scrape, whichever worker takes it, carries both workers' series once
        for _ in range(8):
            scrape = await served.anywhere().get("/metrics", headers={"accept": "text/plain"})
            assert 'lwork_worker{worker="0"} 0.0' in scrape.text
            assert 'lwork_worker{worker="1"} 1.0' in scrape.text
            assert scrape.text.count("# TYPE lwork_held_polls gauge") == 1

        await call_and_kick_across_workers(served, sms_gateway)

        # the SMS cost cap is one count for the whole machine, not one per worker
        on_0, on_1 = await served.pinned(0), await served.pinned(1)
        sent = 0
        for n in range(8):
            client = on_0 if n % 2 else on_1
            r = await client.post("/lwork/sms/auth_code",
                                  json={"uuid": f"1390000{n:04d}", "type": "register"})  # fmt: skip
            sent += r.json().get("status") == "ok"
        assert sent == 5  # 7 an hour, two of them spent registering alice and bob


async def test_a_killed_worker_is_restarted_and_sigterm_stops_them_all(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    async with serve(tmp_path, environment(sms_gateway)) as served:
        before = served.workers()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        # the port keeps answering: the survivor serves, the dead one's socket queues
        client = served.anywhere()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert (await client.get("/healthz")).status_code == 200
        await ready(served, {0, 1})
        after = served.workers()
        assert len(after) == 2 and victim not in after and len(after & before) == 1
        assert "exited with -9; restarting it" in served.log.read_text()

        grandchildren = {pid for worker in after for pid in _children(worker)}
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0
        for pid in after | grandchildren:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in path.read_text().split()} if path.exists() else set()


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    return True


async def test_two_workers_share_redis_when_the_bus_is_redis(
    sms_gateway: SmsGateway, tmp_path: Path, redis_url: str
) -> None:
    async with serve(tmp_path, environment(sms_gateway, LWORK_BUS__URL=redis_url)) as served:
        assert "bus redis" in served.log.read_text()
        await call_and_kick_across_workers(served, sms_gateway)


async def test_workers_stop_when_their_parent_is_killed(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    async with serve(tmp_path, environment(sms_gateway)) as served:
        workers = served.workers()
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(10)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            await asyncio.sleep(0.1)
        with contextlib.suppress(httpx.TransportError):  # nobody serves the port any more
            await served.anywhere().get("/healthz", timeout=2)
            raise AssertionError("an orphan still answers")
