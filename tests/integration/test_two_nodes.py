"""Two `lwork serve` processes sharing PostgreSQL and Redis behave as one service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lwork.app import build_app

from conftest import make_settings
from fakes.nodes import PWD, Node, app_env, held_poll, register_and_login, start_node, wait_ready
from fakes.sms_gateway import SmsGateway

PHONE = "13800138000"


@pytest.fixture
def env(postgres_url: str, redis_url: str, sms_gateway: SmsGateway) -> Iterator[dict[str, str]]:
    yield app_env(
        sms_gateway,
        LWORK_DATABASE__URL=postgres_url,
        LWORK_BUS__URL=redis_url,
        LWORK_SECRET_KEY="shared-secret-of-both-nodes",
        LWORK_LOG_LEVEL="WARNING",
    )


async def test_events_kicks_and_presence_cross_nodes(
    env: dict[str, str], sms_gateway: SmsGateway, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    nodes = [start_node(name, tmp_path, env) for name in ("n1", "n2")]
    try:
        async with httpx.AsyncClient(timeout=40) as client:
            for name, node in zip(("n1", "n2"), nodes, strict=True):
                await wait_ready(client, node, tmp_path, name)
            one, two = nodes

            # register on node 2 with a code sent through node 1
            await client.post(
                one.url + "/lwork/sms/auth_code", json={"uuid": PHONE, "type": "register"}
            )
            code = sms_gateway.last_code(PHONE)
            r = await client.post(
                two.url + "/lwork/mobile/register",
                json={
                    "uuid": PHONE,
                    "device_id": "A",
                    "auth_code": code,
                    "pwd": PWD,
                    "group_id": "common",
                },
            )
            assert r.json() == {"status": "ok"}
            login = {"acc": PHONE, "pwd": PWD, "device_id": "A"}
            assert (await client.post(one.url + "/lwork/mobile/login", json=login)).json()[
                "status"
            ] == "ok"

            poll = {"acc": PHONE, "device_id": "A", "clidata": "c"}

            async def held_on(node: Node) -> asyncio.Task[httpx.Response]:
                return await held_poll(client, node, poll)

            # an event raised on another node reaches the poll held on node 1
            first = await held_on(one)
            settings = make_settings(
                tmp_path / "n3", postgres_url, sms_gateway.url, bus={"url": redis_url}
            )
            app, services = build_app(settings)
            async with app.router.lifespan_context(app):
                await services.push.notify(PHONE, {"event": "from another node"})
                answer = (await asyncio.wait_for(first, 10)).json()
            assert answer == {
                "status": "ok",
                "data": [{"event": "from another node"}],
                "clidata": "c",
            }

            # a newer poll on node 2 replaces the one held on node 1
            first = await held_on(one)
            second = await held_on(two)
            assert (await asyncio.wait_for(first, 10)).json() == {
                "status": "failed", "reason": "overtime", "clidata": "c",
            }  # fmt: skip

            # both nodes agree the device is online
            query = {"users": [{"acc": "a", "phone": PHONE}, {"acc": "b", "phone": "13111111111"}]}
            states = [
                (await client.post(n.url + "/lwork/mobile/query_status", json=query)).json()["data"]
                for n in nodes
            ]
            assert states[0] == states[1]
            assert [s["state"] for s in states[0]] == ["online", "unregistered"]

            # a login on node 1 kicks the poll held on node 2
            r = await client.post(one.url + "/lwork/mobile/login", json={**login, "device_id": "B"})
            assert r.json()["status"] == "ok"
            assert (await asyncio.wait_for(second, 10)).json()["data"] == [
                {"event": "login_otherwhere"}
            ]

            # node 2 learns of a login on node 1 at once, though it had B's session cached
            poll = {"acc": PHONE, "device_id": "B", "clidata": "c"}
            replaced = await held_on(two)  # a B poll there reads its session into the cache
            third = await held_on(two)
            assert (await asyncio.wait_for(replaced, 10)).json()["reason"] == "overtime"
            r = await client.post(one.url + "/lwork/mobile/login", json={**login, "device_id": "C"})
            assert r.json()["status"] == "ok"
            assert (await asyncio.wait_for(third, 10)).json()["data"] == [
                {"event": "login_otherwhere"}
            ]
            again = await asyncio.wait_for(
                client.post(two.url + "/channel/push_service", json=poll), 3
            )
            assert again.json()["data"] == [{"event": "login_otherwhere"}]
    finally:
        for node in nodes:
            node.process.terminate()
        for node in nodes:
            node.process.wait(15)


async def test_a_call_is_served_by_its_own_node_whichever_node_is_asked(
    env: dict[str, str], sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    env = {**env, "LWORK_CALLS__FORWARD_TIMEOUT_S": "0.5", "LWORK_PUSH__HOLD_S": "2"}
    nodes = [start_node(name, tmp_path, env) for name in ("n1", "n2")]
    alice, bob = "13800000001", "13800000002"
    try:
        async with httpx.AsyncClient(timeout=40) as client:
            for name, node in zip(("n1", "n2"), nodes, strict=True):
                await wait_ready(client, node, tmp_path, name)
            one, two = nodes
            await register_and_login(client, one, sms_gateway, alice, "alice-phone")
            await register_and_login(client, two, sms_gateway, bob, "bob-phone")
            m = "/lwork/mobile/"

            async def on(node: Node, path: str, body: dict[str, object]) -> dict[str, object]:
                r = await client.post(node.url + m + path, json=body)
                assert r.status_code == 200, r.text
                answer: dict[str, object] = r.json()
                return answer

            async def status(node: Node, sid: object) -> object:
                r = await client.get(node.url + m + "voip/calls", params={"session_id": sid})
                return r.json()["peer_status"]

            # bob's app polls on node 2, so it is reachable; alice calls through node 1
            polled = asyncio.create_task(client.post(
                two.url + "/channel/push_service", json={"acc": bob, "device_id": "bob-phone"}
            ))  # fmt: skip
            await asyncio.sleep(0.3)
            started = await on(one, "voip/calls", {
                "user_id": alice, "callee_phone": bob, "sdp": {"port": 40000},
                "dev_id": "alice-phone", "type": "p2p"})  # fmt: skip
            sid = started["session_id"]
            assert isinstance(sid, str) and sid.startswith("n1@@")
            opdata = (await asyncio.wait_for(polled, 10)).json()["data"][0]["opdata"]

            # everything bob does lands on node 2 and is served by node 1
            assert await on(two, "p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
            assert await status(one, sid) == "p2p_ring"
            assert await status(two, sid) == "p2p_ring"
            answered = await on(two, "p2p_answer", {"opdata": opdata, "sdp": {"port": 40002}})
            assert answered["status"] == "ok" and answered["port"] != started["port"]
            bob_sid = answered["session_id"]
            assert isinstance(bob_sid, str) and bob_sid.startswith("n1@@")
            assert await status(two, bob_sid) == "p2p_hookoff"
            assert (await on(two, "p2p_poll", {"opdata": opdata}))["peer_status"] == "p2p_hookoff"
            dtmf = await on(two, "voip/dtmf", {"session_id": bob_sid, "num": "12"})
            assert dtmf == {"status": "ok"}

            # alice hangs up through node 2; node 1 has released the call
            r = await client.delete(two.url + m + "voip/calls", params={"session_id": sid})
            assert r.json() == {"status": "ok"}
            assert await status(one, sid) == "release"
            late = await on(two, "p2p_ringing", {"opdata": opdata})
            assert late == {"status": "failed", "reason": "session_not_exist"}

            # a call of a node that is gone: answered as any ended call, after the timeout
            gone = "n9@@" + "0" * 32
            assert await status(one, gone) == "release"
            assert await on(one, "p2p_reject", {"opdata": {"session_id": gone}}) == {
                "status": "failed", "reason": "session_not_exist",
            }  # fmt: skip
            r = await client.get(one.url + m + "callback", params={"session_id": gone})
            assert r.json() == {"status": "ok", "local": "release", "remote": "release"}
            metrics = (await client.get(one.url + "/metrics")).json()
            assert metrics.get("calls_forward_unanswered", 0) >= 3, metrics
    finally:
        for node in nodes:
            node.process.terminate()
        for node in nodes:
            node.process.wait(15)
