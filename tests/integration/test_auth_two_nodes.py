"""CONTRACT §3 across nodes (PostgreSQL + Redis): the long poll held on one node vouches for the
requests that reach another, follows the device when it changes network, and a session ended on
one node ends the poll held on the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from lwork.app import build_app

from conftest import LiveServer, make_settings
from fakes.servers import serve_asgi
from fakes.sms_gateway import SmsGateway

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"
DEVICE = "phone-A"


@asynccontextmanager
async def node(
    name: str, tmp_path: Path, postgres_url: str, redis_url: str, gateway: SmsGateway
) -> AsyncIterator[LiveServer]:
    settings = make_settings(
        tmp_path / name, postgres_url, gateway.url, node=name,
        bus={"url": redis_url}, push={"hold_s": 30},
    )  # fmt: skip
    app, services = build_app(settings)
    async with serve_asgi(app) as url, httpx.AsyncClient(timeout=30) as client:
        yield LiveServer(url, client, services, gateway, settings)


async def get_coin(server: LiveServer, source: str) -> Any:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        r = await client.post(server.url + "/lwork/mobile/get_coin", json={"uuid": PHONE})
        return r.json()["status"]


async def test_the_poll_on_one_node_vouches_on_the_other(
    tmp_path: Path, postgres_url: str, redis_url: str, sms_gateway: SmsGateway
) -> None:
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(
            node("n1", tmp_path, postgres_url, redis_url, sms_gateway)
        )
        two = await stack.enter_async_context(
            node("n2", tmp_path, postgres_url, redis_url, sms_gateway)
        )
        await one.post("/lwork/sms/auth_code", {"uuid": PHONE, "type": "register"})
        code = sms_gateway.last_code(PHONE)
        body = {"uuid": PHONE, "device_id": DEVICE, "auth_code": code, "pwd": PWD,
                "group_id": "common"}  # fmt: skip
        assert (await one.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
        login = {"acc": PHONE, "pwd": PWD, "device_id": DEVICE}
        assert (await two.post("/lwork/mobile/login", login)).json()["status"] == "ok"

        assert await get_coin(two, "127.0.0.1") == "failed"  # no poll yet, anywhere
        async with one.polling(PHONE, DEVICE, source="127.0.0.1"):
            assert await get_coin(two, "127.0.0.1") == "ok"
            assert await get_coin(two, "127.0.0.2") == "failed"
            # the phone moves to another network; its next poll reaches node 1 again
            async with one.polling(PHONE, DEVICE, source="127.0.0.3") as moved:
                assert await get_coin(two, "127.0.0.3") == "ok"  # at once, not after a flush
                assert await get_coin(two, "127.0.0.1") == "failed"
                # a logout through node 2 answers the poll held on node 1 at once
                r = await two.post("/lwork/mobile/logout", {"uuid": PHONE, "device_id": DEVICE})
                assert r.json() == {"status": "ok"}
                done, _ = await asyncio.wait({moved}, timeout=5)
                assert done and moved.result().json()["data"] == [{"event": "unlogined"}]
            assert await get_coin(two, "127.0.0.3") == "failed"
