"""Dated package minutes through real HTTP (CONTRACT §8 ``get_coin``, §9 ``package`` and
``minutes``): the BOSS grants calendar months by signed requests, a ``dth`` app sees its
usable minutes and their first expiry, expired and future periods do not count, and a bought
minute package runs in periods from its payment. SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from lwork.billing.buckets import add_months
from lwork.boss.audit import AuditTrail
from lwork.storage.tables import orders

from conftest import LiveServer
from fakes.boss_client import BossClient

SECRET = "boss-secret-0123456789"
PAY_SECRET = "staging-secret-0123456789"
PWD = "e10adc3949ba59abbe56e057f20f883e"
SDN = "02150001234"
ZONE = ZoneInfo("Asia/Shanghai")
Factory = Callable[..., Any]


@contextlib.asynccontextmanager
async def dth_app(factory: Factory) -> AsyncIterator[tuple[LiveServer, BossClient, dict[str, str]]]:
    """A server, a BOSS client, and a logged-in ``dth`` app the BOSS opened (no minutes yet)."""
    async with factory(
        boss={"keys": {"billing": [SECRET]}, "allowed_sources": ["127.0.0.0/8"]},
        billing={"signup_gift_minutes": 0, "timezone": "Asia/Shanghai"},
        payments={"test": {"enabled": True, "secret": PAY_SECRET}},
    ) as server:
        boss = BossClient(server.url, "billing", SECRET)
        try:
            r = await boss.call("open", {"request_id": "o1", "account": SDN, "pwd": "boss-pw"})
            assert r.status_code == 200, r.text
            register = {"uuid": SDN, "device_id": "d", "pwd": PWD, "group_id": "dth",
                        "name": "dora", "auth_code": "boss-pw"}  # fmt: skip
            assert (await server.post("/lwork/mobile/register", register)).json()["status"] == "ok"
            r = await server.post("/lwork/mobile/login", {"acc": SDN, "pwd": PWD, "device_id": "d"})
            yield server, boss, {"Authorization": f"Bearer {r.json()['token']}"}
        finally:
            await boss.close()


async def get_coin(server: LiveServer, auth: dict[str, str]) -> Any:
    r = await server.post("/lwork/mobile/get_coin", {"uuid": SDN, "device_id": "d"}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def today() -> dt.date:
    return dt.datetime.now(ZONE).date()


def last_day(first: dt.date, months: int) -> str:
    return (add_months(first, months) - dt.timedelta(days=1)).isoformat()


async def test_a_dth_account_without_packages_shows_no_minutes(server_factory: Factory) -> None:
    async with dth_app(server_factory) as (server, _, auth):
        assert await get_coin(server, auth) == {
            "status": "ok", "coins": 0, "gift_coins": 0, "month_consumed": 0, "minutes": 0,
            "minutes_expire": "",
        }  # fmt: skip


async def test_the_boss_grants_months_and_only_the_current_one_counts(
    server_factory: Factory,
) -> None:
    async with dth_app(server_factory) as (server, boss, auth):
        # three months from two months ago: two are over, the third runs from today's midnight
        start = add_months(today(), -2)
        body = {"request_id": "p1", "account": SDN, "minutes": 100, "period": "month",
                "periods": 3, "start": start.isoformat()}  # fmt: skip
        r = await boss.call("package", body)
        assert r.status_code == 200, r.text
        current = {"minutes_left": 100, "expire": last_day(start, 3),
                   "start": add_months(start, 2).isoformat()}  # fmt: skip
        assert r.json() == {"status": "ok", "account": SDN, "applied": True, "minutes": 100,
                            "packages": [current]}  # fmt: skip
        # the same request again (signed anew a second later) changes nothing
        again = boss.signed("package", body, timestamp=int(time.time()) + 1)
        assert (await boss.send(again)).json() == r.json()
        # a package starting tomorrow is listed but not usable yet
        tomorrow = today() + dt.timedelta(days=1)
        later = {**body, "request_id": "p2", "minutes": 40, "periods": 1,
                 "start": tomorrow.isoformat()}  # fmt: skip
        assert (await boss.call("package", later)).json()["minutes"] == 100
        r = await boss.call("minutes", {"account": SDN, "request_id": "m1"})
        assert r.json() == {"status": "ok", "account": SDN, "minutes": 100, "packages": [
            current,
            {"minutes_left": 40, "expire": last_day(tomorrow, 1), "start": tomorrow.isoformat()},
        ]}  # fmt: skip
        coin = await get_coin(server, auth)
        assert (coin["minutes"], coin["minutes_expire"]) == (100, last_day(start, 3))
        # undated minutes (a BOSS credit) count too, and do not move the first expiry
        credit = {"request_id": "c1", "account": SDN, "minutes": 7, "ref": "gift-1"}
        assert (await boss.call("credit", credit)).json()["minutes"] == 107
        coin = await get_coin(server, auth)
        assert (coin["minutes"], coin["minutes_expire"]) == (107, last_day(start, 3))
        trail = await AuditTrail(server.services.engine).entries(SDN)
        grants = [e for e in trail if e.action == "package"]
        assert sorted((e.actor, e.result, e.detail["minutes"]) for e in grants) == [
            ("billing", "ok", 40), ("billing", "ok", 100), ("billing", "repeat", 100)]  # fmt: skip


async def test_bad_package_requests_are_refused_without_a_change(server_factory: Factory) -> None:
    async with dth_app(server_factory) as (server, boss, auth):
        base = {"account": SDN, "minutes": 100, "periods": 1, "start": today().isoformat()}
        for n, (fields, reason) in enumerate([
            ({"periods": 0}, "invalid_params"),
            ({"periods": 10_000}, "invalid_params"),
            ({"minutes": -5}, "invalid_params"),
            ({"minutes": "100"}, "invalid_params"),
            ({"period": "week"}, "invalid_params"),
            ({"start": "2026-02-30"}, "invalid_params"),
            ({"start": "yesterday"}, "invalid_params"),
            ({"price": 1}, "invalid_params"),
            ({"account": "02150009999"}, "account_not_exist"),
        ]):  # fmt: skip
            r = await boss.call("package", {**base, **fields, "request_id": f"bad-{n}"})
            assert (r.status_code, r.json()["reason"]) == (400, reason), fields
        coin = await get_coin(server, auth)
        assert (coin["minutes"], coin["minutes_expire"]) == (0, "")


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    mac = hmac.new(PAY_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Lwork-Signature": mac, "Content-Type": "application/json"}


async def test_a_bought_package_runs_in_periods_from_its_payment(server_factory: Factory) -> None:
    async with dth_app(server_factory) as (server, boss, auth):
        body = {"uuid": SDN, "device_id": "d", "pay_type": "test", "product_id": "minutes_300x3"}
        opened = (await server.post("/lwork/mobile/get_payid", body, headers=auth)).json()
        assert opened["status"] == "ok", opened
        raw, headers = signed({"payid": opened["payid"], "money": "150.00", "trade_no": "T-9"})
        r = await server.client.post(server.url + "/lwork/pay/notify/test", content=raw,
                                     headers=headers)  # fmt: skip
        assert (r.status_code, r.text) == (200, "success")
        async with server.services.engine.connect() as conn:
            paid_at = await conn.scalar(
                select(orders.c.paid_at).where(orders.c.payid == opened["payid"])
            )
        days = [dt.datetime.fromtimestamp(paid_at + n * 30 * 86400 - 1e-3, ZONE).date()
                for n in (1, 2, 3)]  # fmt: skip
        coin = await get_coin(server, auth)
        # 300 minutes a period for 3 periods of 30 days: only the first is usable now
        assert (coin["minutes"], coin["minutes_expire"]) == (300, days[0].isoformat())
        r = await boss.call("minutes", {"account": SDN, "request_id": "m2"})
        assert [(p["minutes_left"], p["expire"]) for p in r.json()["packages"]] == [
            (300, day.isoformat()) for day in days]  # fmt: skip


async def test_a_refunded_package_gives_back_its_periods_latest_first(
    server_factory: Factory,
) -> None:
    async with dth_app(server_factory) as (server, boss, auth):
        body = {"uuid": SDN, "device_id": "d", "pay_type": "test", "product_id": "minutes_300x3"}
        payid = (await server.post("/lwork/mobile/get_payid", body, headers=auth)).json()["payid"]
        raw, headers = signed({"payid": payid, "money": "150.00", "trade_no": "T-10"})
        await server.client.post(server.url + "/lwork/pay/notify/test", content=raw,
                                 headers=headers)  # fmt: skip
        # Half the price back: 450 of the 900 minutes, from the two periods not yet reached.
        r = await boss.call("refund", {"request_id": "r1", "payid": payid, "reason": "asked",
                                       "money": 75.0})  # fmt: skip
        assert r.json()["minutes_taken"] == 450 and r.json()["minutes_short"] == 0, r.json()
        left = await boss.call("minutes", {"account": SDN, "request_id": "m3"})
        assert [p["minutes_left"] for p in left.json()["packages"]] == [300, 150]
        assert (await get_coin(server, auth))["minutes"] == 300  # the period in use is kept
