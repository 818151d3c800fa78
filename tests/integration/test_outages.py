"""What a running `lwork serve` does when PostgreSQL or Redis dies under it and comes back
(issue 17, chaos): requests answer ``service_not_available`` meanwhile, never a 500 or a hang;
held long polls lose no event; everything recovers without restarting lwork.

Each test owns the server it kills: a throwaway PostgreSQL cluster (initdb, as the ``postgres``
user) or redis-server on free ports, never the machine's shared ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from bench._throwaway import (
    ThrowawayPostgres,
    ThrowawayRedis,
    postgres_bin,
    why_no_throwaway_postgres,
)

from lwork.app import build_app

from conftest import make_settings
from fakes.nodes import PWD, Node, held_poll, register_and_login, start_node, wait_ready
from fakes.sms_gateway import SmsGateway

PHONE = "13800138000"
OUTAGE_REQUESTS = 50
FAST_ARGON2 = {"LWORK_AUTH__ARGON2_MEMORY_KIB": "8192", "LWORK_AUTH__ARGON2_TIME_COST": "1"}


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    reason = why_no_throwaway_postgres()
    binaries = postgres_bin()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert binaries is not None
    server = ThrowawayPostgres(binaries)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed in CI")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = ThrowawayRedis(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.remove()


@contextlib.asynccontextmanager
async def nodes(names: list[str], tmp: Path, env: dict[str, str]) -> AsyncIterator[list[Node]]:
    started = [start_node(name, tmp, env) for name in names]
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for name, node in zip(names, started, strict=True):
                await wait_ready(client, node, tmp, name)
        yield started
    finally:
        for node in started:
            node.process.terminate()
        for node in started:
            node.process.wait(15)


async def test_a_postgresql_crash_answers_service_not_available_then_recovers_by_itself(
    throwaway_postgres: ThrowawayPostgres, sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    env = {
        "LWORK_DATABASE__URL": throwaway_postgres.url,
        "LWORK_SMS__PROVIDER": "http",
        "LWORK_SMS__GATEWAY_URL": sms_gateway.url,
        "LWORK_LOG_LEVEL": "WARNING",
        "LWORK_AUTH__LOGIN_PER_MINUTE_PER_IP": "1000",  # the outage's retries, not the limit
        **FAST_ARGON2,
    }
    login = {"acc": PHONE, "pwd": PWD, "device_id": "A"}
    async with nodes(["n1"], tmp_path, env) as (node,), httpx.AsyncClient(timeout=30) as client:
        await register_and_login(client, node, sms_gateway, PHONE, "A")

        throwaway_postgres.kill()
        started = time.monotonic()
        answer = await client.post(node.url + "/lwork/mobile/login", json=login)
        assert time.monotonic() - started < 10  # refused, not hung on the dead database
        assert answer.status_code == 200
        assert answer.json() == {"status": "failed", "reason": "service_not_available"}
        assert (await client.get(node.url + "/readyz")).status_code != 200
        # Every app retries while the database is away: the log says so once, not per request.
        for _ in range(OUTAGE_REQUESTS):
            answer = await client.post(node.url + "/lwork/mobile/login", json=login)
            assert answer.json() == {"status": "failed", "reason": "service_not_available"}
        during = (tmp_path / "n1.log").read_text()
        assert "Traceback" not in during, during[-3000:]
        outage_lines = [line for line in during.splitlines() if "storage unavailable" in line]
        assert 1 <= len(outage_lines) <= 2, during[-3000:]

        throwaway_postgres.start()
        restarted = time.monotonic()
        while True:
            answer = await client.post(node.url + "/lwork/mobile/login", json=login)
            if answer.json()["status"] == "ok":
                break
            assert answer.json() == {"status": "failed", "reason": "service_not_available"}
            assert time.monotonic() - restarted < 20, "lwork did not recover by itself"
            await asyncio.sleep(0.2)
        assert (await client.get(node.url + "/readyz")).status_code == 200
        assert node.process.poll() is None  # the same process throughout


async def test_an_event_raised_while_redis_is_down_reaches_the_held_poll_after_it_returns(
    throwaway_redis: ThrowawayRedis,
    postgres_url: str,
    sms_gateway: SmsGateway,
    tmp_path: Path,
) -> None:
    """The device's poll is held on node 1; node 3 raises an event for it while Redis is down
    (the mailbox in PostgreSQL keeps it, the wake-up is lost); when Redis returns, node 1
    re-reads its held polls' mailboxes and the event arrives."""
    env = {
        "LWORK_DATABASE__URL": postgres_url,
        "LWORK_BUS__URL": throwaway_redis.url,
        "LWORK_SECRET_KEY": "shared-secret-of-every-node",
        "LWORK_SMS__PROVIDER": "http",
        "LWORK_SMS__GATEWAY_URL": sms_gateway.url,
        "LWORK_PUSH__HOLD_S": "60",
        "LWORK_LOG_LEVEL": "WARNING",
        **FAST_ARGON2,
    }
    async with nodes(["n1"], tmp_path, env) as (one,), httpx.AsyncClient(timeout=90) as client:
        await register_and_login(client, one, sms_gateway, PHONE, "A")
        poll = {"acc": PHONE, "device_id": "A", "clidata": "c"}

        first = await held_poll(client, one, poll, replaced=0)
        settings = make_settings(tmp_path / "n3", postgres_url, sms_gateway.url,
                                 bus={"url": throwaway_redis.url}, node="n3")  # fmt: skip
        app, services = build_app(settings)
        async with app.router.lifespan_context(app):
            throwaway_redis.kill()
            # the app polls again while Redis is down: held all the same, the older one ends
            second = await held_poll(client, one, poll, replaced=1)
            assert (await asyncio.wait_for(first, 10)).json()["reason"] == "overtime"
            await asyncio.wait_for(services.push.notify(PHONE, {"event": "while down"}), 10)
            await asyncio.sleep(0.5)
            assert not second.done()  # nothing could wake it
            throwaway_redis.start()
            answer = (await asyncio.wait_for(second, 30)).json()
        assert answer == {"status": "ok", "data": [{"event": "while down"}], "clidata": "c"}
