"""A device with no live poll is woken through its third-party push registration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from conftest import LiveServer
from fakes.push_servers import FakeBaiduServer, baidu_error

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"


@pytest.fixture
async def baidu() -> AsyncIterator[FakeBaiduServer]:
    server = FakeBaiduServer("api-key", "secret-key")
    await server.start()
    yield server
    await server.close()


async def logged_in(server: LiveServer, device: str) -> None:
    if not server.gateway.received:
        await server.post("/lwork/sms/auth_code", {"uuid": PHONE, "type": "register"})
        code = server.gateway.last_code(PHONE)
        r = await server.post(
            "/lwork/mobile/register",
            {
                "uuid": PHONE,
                "device_id": device,
                "auth_code": code,
                "pwd": PWD,
                "group_id": "common",
            },
        )
        assert r.json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": device})
    assert r.json()["status"] == "ok"


async def register_channel(server: LiveServer, channel: str) -> None:
    """As the app does: while it holds a long poll (CONTRACT §3), then it goes to sleep."""
    async with server.polling(PHONE, "A"):
        r = await server.post(
            "/lwork/mobile/baidu_push_register",
            {"caller": PHONE, "account": PHONE, "user_id": "bd-user", "channel_id": channel},
        )
    assert r.json() == {"status": "ok"}


async def test_sleeping_device_is_woken_and_held_poll_is_not(
    server_factory,
    baidu: FakeBaiduServer,  # type: ignore[no-untyped-def]
) -> None:
    settings = {"enabled": True, "api_key": "api-key", "secret_key": "secret-key",
                "base_url": baidu.base_url}  # fmt: skip
    async with server_factory(push={"hold_s": 30, "baidu": settings}) as server:
        await logged_in(server, "A")
        await register_channel(server, "channel-A")

        invite = {"event": "p2p_inform_called", "caller": "13900000000", "opdata": {"s": "n1@@x"}}
        await server.services.push.notify(PHONE, invite, call_id="n1@@x")
        await baidu.wait_for_requests(1)
        form = baidu.forms[-1]
        assert baidu.problems == []
        assert form["channel_id"] == "channel-A"
        assert json.loads(form["msg"])["event"] == "p2p_inform_called"

        # while the app holds a poll, the poll carries the event and no push is sent
        held = asyncio.create_task(
            server.post("/channel/push_service", {"acc": PHONE, "device_id": "A"})
        )
        for _ in range(500):
            if server.services.polls.held:
                break
            await asyncio.sleep(0.01)
        first = (await asyncio.wait_for(held, 5)).json()["data"]
        assert first == [invite]  # the queued invitation, delivered by the poll
        held = asyncio.create_task(
            server.post("/channel/push_service", {"acc": PHONE, "device_id": "A"})
        )
        for _ in range(500):
            if server.services.polls.held:
                break
            await asyncio.sleep(0.01)
        await server.services.push.notify(PHONE, {"event": "note"})
        assert (await asyncio.wait_for(held, 5)).json()["data"] == [{"event": "note"}]
        await asyncio.sleep(0.2)
        assert len(baidu.requests) == 1

        # a login elsewhere reaches the sleeping old device through its push channel
        await logged_in(server, "B")
        await baidu.wait_for_requests(2)
        assert baidu.forms[-1]["channel_id"] == "channel-A"
        assert json.loads(baidu.forms[-1]["msg"])["event"] == "login_otherwhere"


async def test_a_dead_channel_is_forgotten(server_factory, baidu: FakeBaiduServer) -> None:  # type: ignore[no-untyped-def]
    settings = {"enabled": True, "api_key": "api-key", "secret_key": "secret-key",
                "base_url": baidu.base_url}  # fmt: skip
    async with server_factory(push={"baidu": settings}) as server:
        await logged_in(server, "A")
        await register_channel(server, "gone-channel")
        baidu.enqueue(baidu_error(30608, "Bind Relation Not Found", status=404))
        await server.services.push.notify(PHONE, {"event": "x"})
        await baidu.wait_for_requests(1)
        store = server.services.account_store
        for _ in range(200):
            if not await store.push_registrations(PHONE, "A"):
                break
            await asyncio.sleep(0.02)
        assert await store.push_registrations(PHONE, "A") == {}
        await server.services.push.notify(PHONE, {"event": "y"})
        await asyncio.sleep(0.3)
        assert len(baidu.requests) == 1
