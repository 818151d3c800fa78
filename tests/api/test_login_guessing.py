"""Password guessing is slowed per account and address: strangers cannot lock the owner out,
one address backs off exponentially, many addresses are bounded per account; the same for the
BOSS activation password of dth numbers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from lwork.accounts.provisioning import ProvisioningService

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"
OWNER = "198.51.100.9"
PROXY = {"trusted_proxies": ["127.0.0.1"]}


async def registered(server: LiveServer, phone: str) -> None:
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    body = {"uuid": phone, "device_id": "d", "pwd": PWD, "group_id": "common"}
    r = await server.post(
        "/lwork/mobile/register", {**body, "auth_code": server.gateway.last_code(phone)}
    )
    assert r.json() == {"status": "ok"}


async def login(server: LiveServer, phone: str, pwd: str, client: str) -> httpx.Response:
    return await server.post(
        "/lwork/mobile/login",
        {"acc": phone, "pwd": pwd, "device_id": "d"},
        headers={"X-Forwarded-For": client},
    )


async def test_wrong_logins_from_rotating_addresses_do_not_lock_the_owner_out(
    server_factory: Callable[..., Any],
) -> None:
    async with server_factory(http=PROXY) as server:
        phone = "13800000200"
        await registered(server, phone)
        assert (await login(server, phone, PWD, OWNER)).json()["status"] == "ok"
        for i in range(40):
            r = await login(server, phone, "bad", f"203.0.113.{i}")
            assert r.status_code in (200, 429)
        r = await login(server, phone, PWD, OWNER)
        assert r.json()["status"] == "ok"


async def test_many_addresses_are_bounded_per_account(server_factory: Callable[..., Any]) -> None:
    async with server_factory(http=PROXY, auth={"login_per_hour_per_account": 5}) as server:
        phone = "13800000201"
        await registered(server, phone)
        assert (await login(server, phone, PWD, OWNER)).json()["status"] == "ok"
        answers = [(await login(server, phone, "bad", f"203.0.113.{i}")) for i in range(8)]
        assert [r.json()["reason"] for r in answers] == ["pwd_not_match"] * 5 + [
            "too_many_requests"
        ] * 3
        assert [r.status_code for r in answers[5:]] == [429] * 3
        # the budget frees a slot at a time (about an hour / 5), not after a whole hour
        assert 0 < int(answers[5].headers["retry-after"]) <= 3600 / 5 + 1
        # the owner's own address is not refused by it
        assert (await login(server, phone, PWD, OWNER)).json()["status"] == "ok"


async def test_one_address_backs_off_exponentially(server_factory: Callable[..., Any]) -> None:
    async with server_factory(
        http=PROXY,
        auth={"login_free_failures": 3, "login_backoff_base_s": 1, "login_per_minute_per_ip": 100},
    ) as server:
        phone = "13800000202"
        await registered(server, phone)
        guesser = "203.0.113.77"
        # parallel guesses cannot all pass one check: exactly the free ones are judged
        answers = await asyncio.gather(*(login(server, phone, "bad", guesser) for _ in range(10)))
        reasons = sorted(r.json()["reason"] for r in answers)
        assert reasons == ["pwd_not_match"] * 3 + ["too_many_requests"] * 7
        throttled = next(r for r in answers if r.status_code == 429)
        assert throttled.headers["retry-after"] == "1"
        # the right password is not even checked while the address waits
        assert (await login(server, phone, PWD, guesser)).status_code == 429
        # the owner elsewhere is not delayed
        assert (await login(server, phone, PWD, OWNER)).json()["status"] == "ok"
        await asyncio.sleep(1.05)
        assert (await login(server, phone, "bad", guesser)).json()["reason"] == "pwd_not_match"
        r = await login(server, phone, "bad", guesser)
        assert (r.status_code, r.headers["retry-after"]) == (429, "2")  # the wait doubled


async def test_the_dth_activation_password_is_throttled(
    server_factory: Callable[..., Any],
) -> None:
    async with server_factory(http=PROXY, auth={"login_free_failures": 3}) as server:
        sdn = "02150009999"
        provisioning = ProvisioningService(server.services.account_store, server.services.passwords)
        await provisioning.open(sdn, "boss-pw", "dth", time.time())
        body = {"uuid": sdn, "device_id": "d", "pwd": PWD, "group_id": "dth", "name": "dora"}
        guesser = {"X-Forwarded-For": "203.0.113.5"}
        answers = [
            await server.post("/lwork/mobile/register", {**body, "auth_code": f"guess{i}"},
                              headers=guesser)
            for i in range(5)
        ]  # fmt: skip
        assert [r.json()["reason"] for r in answers] == ["invalid_auth_code"] * 3 + [
            "too_many_requests"
        ] * 2
        # the subscriber activating from elsewhere is not delayed
        r = await server.post(
            "/lwork/mobile/register",
            {**body, "auth_code": "boss-pw"},
            headers={"X-Forwarded-For": OWNER},
        )
        assert r.json() == {"status": "ok"}


async def test_backoff_holds_across_nodes(server_factory: Callable[..., Any]) -> None:
    settings = {"http": PROXY, "auth": {"login_free_failures": 3}}
    async with server_factory(**settings) as one, server_factory(**settings) as two:
        phone = "13800000203"
        await registered(one, phone)
        guesser = "203.0.113.78"
        reasons = [
            (await login((one, two)[i % 2], phone, "bad", guesser)).json()["reason"]
            for i in range(6)
        ]
        assert reasons == ["pwd_not_match"] * 3 + ["too_many_requests"] * 3
