"""The BOSS HTTP interface (CONTRACT §9) through real HTTP, signed by a client written from the
contract: operations over the provisioning and billing services, once per request id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from lwork.boss.audit import AuditTrail

from conftest import LiveServer
from fakes.boss_client import BossClient

SECRET = "boss-secret-0123456789"
NEXT_SECRET = "boss-secret-rotated-9876543210"
PWD = "e10adc3949ba59abbe56e057f20f883e"
SDN = "02150001234"

Factory = Callable[..., Any]


def boss_settings(**extra: Any) -> dict[str, Any]:
    return {"keys": {"billing": [SECRET, NEXT_SECRET]}, "allowed_sources": ["127.0.0.0/8"],
            **extra}  # fmt: skip


@contextlib.asynccontextmanager
async def boss_server(
    factory: Factory, **boss: Any
) -> AsyncIterator[tuple[LiveServer, BossClient]]:
    # No welcome gift at registration: every minute here is the BOSS's.
    billing = {"signup_gift_minutes": 0}
    async with factory(boss=boss_settings(**boss), billing=billing) as server:
        client = BossClient(server.url, "billing", SECRET)
        try:
            yield server, client
        finally:
            await client.close()


async def minutes(boss: BossClient, account: str = SDN) -> int:
    # A read signed twice in one second is the same signature (a replay): a fresh request id
    # makes each read its own request, as the README advises.
    r = await boss.call("minutes", {"account": account, "request_id": secrets.token_hex(8)})
    assert r.status_code == 200, r.text
    value: int = r.json()["minutes"]
    return value


async def retry(boss: BossClient, operation: str, fields: dict[str, Any], later: int = 1) -> Any:
    """The BOSS sends the same request again, signed anew a little later (the same signature
    would be a replay)."""
    r = await boss.send(boss.signed(operation, fields, timestamp=int(time.time()) + later))
    return r.json()


async def login(server: LiveServer) -> dict[str, Any]:
    r = await server.post("/lwork/mobile/login", {"acc": SDN, "pwd": PWD, "device_id": "d"})
    body: dict[str, Any] = r.json()
    return body


async def test_an_account_from_open_to_close(server_factory: Factory) -> None:
    async with boss_server(server_factory, open_minutes=60) as (server, boss):
        r = await boss.call("open", {"request_id": "r1", "group": "dth", "account": SDN,
                                     "pwd": "boss-pw"})  # fmt: skip
        assert (r.status_code, r.json()) == (200, {"status": "ok", "account": SDN})
        standing = (await boss.call("minutes", {"account": SDN})).json()
        # boss.open_minutes never expire: one package without an expiry.
        assert standing == {
            "status": "ok",
            "account": SDN,
            "minutes": 60,
            "packages": [
                {"minutes_left": 60, "expire": None, "start": standing["packages"][0]["start"]}
            ],
        }
        again = await boss.call("open", {"request_id": "r2", "account": SDN, "pwd": "x"})
        assert again.status_code == 400
        assert again.json() == {"status": "failed", "reason": "account_already_exist"}

        r = await boss.call("bind", {"request_id": "r3", "account": SDN, "phone": "13911112222"})
        assert r.json()["status"] == "ok"
        register = {"uuid": SDN, "device_id": "d", "pwd": PWD, "group_id": "dth",
                    "name": "dora", "auth_code": "boss-pw"}  # fmt: skip
        assert (await server.post("/lwork/mobile/register", register)).json()["status"] == "ok"
        assert (await login(server))["did"] == "13911112222"
        r = await boss.call("unbind", {"request_id": "r4", "account": SDN})
        assert r.json()["status"] == "ok"
        assert (await login(server))["did"] == ""

        credit = {"request_id": "r5", "account": SDN, "minutes": 30, "ref": "order-1"}
        first = await boss.call("credit", credit)
        assert first.json() == {"status": "ok", "account": SDN, "ref": "order-1",
                                "applied": True, "minutes": 90, "coins": 0,
                                "gift_coins": 0}  # fmt: skip
        # the same request again (a retry): the same answer, nothing credited twice
        assert await retry(boss, "credit", credit) == first.json()
        # another request with the same reference: applied once per ref
        other = await boss.call("credit", {**credit, "request_id": "r6"})
        assert other.json()["applied"] is False and other.json()["minutes"] == 90
        assert await minutes(boss) == 90

        r = await boss.call("deactivate", {"request_id": "r7", "account": SDN})
        assert r.json()["status"] == "ok"
        assert (await server.services.accounts.inactive_among([SDN])) == {SDN}
        r = await boss.call("activate", {"request_id": "r8", "account": SDN})
        assert r.json()["status"] == "ok"
        assert (await server.services.accounts.inactive_among([SDN])) == set()

        nothing = await boss.call("credit", {**credit, "request_id": "r6b", "minutes": 0})
        assert (nothing.status_code, nothing.json()["reason"]) == (400, "invalid_amount")

        token = (await login(server))["token"]
        info = {"uuid": SDN, "device_id": "d", "info": 1}
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await server.post("/lwork/mobile/add_info", info, headers=bearer)).json() == {
            "status": "ok"}  # fmt: skip
        r = await boss.call("close", {"request_id": "r9", "account": SDN})
        assert (r.status_code, r.json()) == (200, {"status": "ok", "account": SDN})
        # its session ended with it
        assert (await server.post("/lwork/mobile/add_info", info, headers=bearer)).json() == {
            "status": "failed", "reason": "no_logined"}  # fmt: skip
        assert (await login(server))["status"] == "failed"
        reset = {"uuid": SDN, "auth_code": "boss-pw", "pwd": "new", "group_id": "dth",
                 "name": "dora"}  # fmt: skip
        assert (await server.post("/lwork/mobile/forget_pwd", reset)).json()["status"] == "failed"
        r = await boss.call("activate", {"request_id": "r10", "account": SDN})
        assert r.json() == {"status": "failed", "reason": "account_closed"}
        # its balance is kept for the books
        assert await minutes(boss) == 90


async def test_a_request_id_is_kept_across_a_restart(server_factory: Factory) -> None:
    opened = {"request_id": "open-1", "account": SDN, "pwd": "boss-pw"}
    credit = {"request_id": "c-1", "account": SDN, "minutes": 5, "ref": "c-1"}
    async with boss_server(server_factory) as (_, boss):
        assert (await boss.call("open", opened)).json()["status"] == "ok"
        assert (await boss.call("credit", credit)).json()["minutes"] == 5
    async with boss_server(server_factory) as (_, boss):
        # answered as the first time, without a second change
        assert await retry(boss, "open", opened) == {"status": "ok", "account": SDN}
        assert (await retry(boss, "credit", credit))["minutes"] == 5
        assert await minutes(boss) == 5
        # the same id for another change is refused, not run
        other = await boss.call("credit", {**credit, "minutes": 7})
        assert (other.status_code, other.json()["reason"]) == (409, "request_id_conflict")
        assert await minutes(boss) == 5


async def test_either_secret_of_a_rotating_key_signs(server_factory: Factory) -> None:
    async with boss_server(server_factory) as (server, boss):
        assert (await boss.call("open", {"request_id": "o", "account": SDN, "pwd": "p"})).json()
        rotated = BossClient(server.url, "billing", NEXT_SECRET)
        try:
            assert (await rotated.call("minutes", {"account": SDN})).json()["minutes"] == 0
        finally:
            await rotated.close()


async def test_an_unknown_account_is_refused_without_a_change(server_factory: Factory) -> None:
    async with boss_server(server_factory) as (server, boss):
        for operation, fields in [
            ("activate", {"request_id": "a1", "account": SDN}),
            ("bind", {"request_id": "a2", "account": SDN, "phone": "13911112222"}),
            ("credit", {"request_id": "a3", "account": SDN, "minutes": 5, "ref": "a3"}),
            ("minutes", {"account": SDN}),
            ("cdrs", {"account": SDN, "start": "2026-01-01", "end": "2026-01-02"}),
        ]:
            r = await boss.call(operation, fields)
            assert r.status_code == 400, operation
            assert r.json() == {"status": "failed", "reason": "account_not_exist"}, operation
        assert await server.services.account_store.provisioned(SDN) is None
        assert (await server.services.billing.balance(SDN)).minutes == 0


async def test_every_admitted_request_is_in_the_audit_trail(server_factory: Factory) -> None:
    async with boss_server(server_factory) as (server, boss):
        opened = {"request_id": "o", "account": SDN, "pwd": "boss-pw"}
        await boss.call("open", opened)
        await retry(boss, "open", opened)
        await boss.call("activate", {"request_id": "x", "account": "02150009999"})
        entries = await AuditTrail(server.services.engine).entries()
    assert [(e.actor, e.action, e.account, e.result) for e in entries] == [
        ("billing", "open", SDN, "ok"),
        ("billing", "open", SDN, "repeat"),
        ("billing", "activate", "02150009999", "account_not_exist"),
    ]
    assert entries[0].detail == {"request_id": "o", "account": SDN, "group": "dth"}


async def test_the_readme_example_is_answered(server_factory: Factory) -> None:
    """The README's curl + openssl lines, as an operator would paste them."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = readme.split("A worked example", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    async with boss_server(server_factory) as (server, boss):
        await boss.call("open", {"request_id": "o", "account": SDN, "pwd": "boss-pw"})
        script = example.replace("<secret>", SECRET).replace("http://127.0.0.1:8080", server.url)
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
    assert process.returncode == 0, err
    assert json.loads(out) == {"status": "ok", "account": SDN, "minutes": 0, "packages": []}


async def test_concurrent_retries_of_one_request_id_change_once(server_factory: Factory) -> None:
    opened = {"request_id": "open-x", "account": SDN, "pwd": "boss-pw"}
    async with boss_server(server_factory) as (_, boss):
        now = int(time.time())
        requests = [boss.signed("open", opened, timestamp=now + i) for i in range(6)]
        answers = await asyncio.gather(*(boss.send(request) for request in requests))
        results = sorted((r.status_code, r.json().get("reason", "ok")) for r in answers)
        # the first runs; the others answer as it did, or that it is still running
        assert set(results) <= {(200, "ok"), (409, "request_in_progress")}, results
        assert (200, "ok") in results
        later = await retry(boss, "open", opened, later=10)
        assert later == {"status": "ok", "account": SDN}
