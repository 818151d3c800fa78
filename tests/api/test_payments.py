"""Orders and the test provider through real HTTP (CONTRACT §8): catalogue prices, orders,
signed notifications credited exactly once, and every bad notification refused or flagged."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from lwork.storage.tables import ledger, orders

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"
SECRET = "staging-secret-0123456789"
NOTIFY = "/lwork/pay/notify/test"
TEST_PAY = {"test": {"enabled": True, "secret": SECRET}}
FREE_ACCOUNTS = {"signup_gift_coins": 0, "timezone": "Asia/Shanghai"}


@pytest.fixture
async def paying(server_factory: Callable[..., Any]) -> AsyncIterator[LiveServer]:
    async with server_factory(payments=TEST_PAY, billing=FREE_ACCOUNTS) as live:
        yield live


async def login(server: LiveServer, phone: str = PHONE) -> dict[str, str]:
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    body = {"uuid": phone, "device_id": "d", "auth_code": server.gateway.last_code(phone),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": phone, "pwd": PWD, "device_id": "d"})
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def order(server: LiveServer, auth: dict[str, str], **fields: Any) -> Any:
    body = {"uuid": PHONE, "device_id": "d", "pay_type": "test", **fields}
    return (await server.post("/lwork/mobile/get_payid", body, headers=auth)).json()


def signed(body: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    mac = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Lwork-Signature": mac, "Content-Type": "application/json"}


async def notify(
    server: LiveServer, body: dict[str, Any], secret: str = SECRET, client: Any = None
) -> httpx.Response:
    raw, headers = signed(body, secret)
    return await (client or server.client).post(server.url + NOTIFY, content=raw, headers=headers)


async def coins(server: LiveServer, auth: dict[str, str]) -> Any:
    r = await server.post("/lwork/mobile/get_coin", {"uuid": PHONE}, headers=auth)
    return r.json()["coins"]


async def state(server: LiveServer, payid: str) -> tuple[str, str | None]:
    async with server.services.engine.connect() as conn:
        row = (await conn.execute(select(orders).where(orders.c.payid == payid))).one()
    return row.state, row.note


async def test_an_order_paid_through_the_test_provider_is_credited_once(
    paying: LiveServer,
) -> None:
    auth = await login(paying)
    opened = await order(paying, auth, money=30, coins=300)
    assert opened["status"] == "ok" and opened["uuid"] == PHONE
    payid = opened["payid"]
    assert 16 <= len(payid) <= 32 and payid.isalnum() and payid.isascii()
    paid = {"payid": payid, "money": "30.00", "trade_no": "T-1"}
    r = await notify(paying, paid)
    assert (r.status_code, r.text) == (200, "success")
    assert await coins(paying, auth) == 300
    # a repeat is accepted and changes nothing
    r = await notify(paying, paid)
    assert (r.status_code, r.text) == (200, "success")
    assert await coins(paying, auth) == 300
    assert await state(paying, payid) == ("paid", None)

    r = await paying.post("/lwork/mobile/get_recharges", {"uuid": PHONE, "device_id": "d"},
                          headers=auth)  # fmt: skip
    [recharge] = r.json()["recharges"]
    async with paying.services.engine.connect() as conn:
        paid_at = await conn.scalar(select(orders.c.paid_at).where(orders.c.payid == payid))
    local = dt.datetime.fromtimestamp(paid_at, ZoneInfo("Asia/Shanghai"))
    assert recharge == {
        "year": local.year, "month": local.month, "date": local.day, "hour": local.hour,
        "minute": local.minute, "second": local.second, "money": 30, "coins": 300,
        "time": local.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip


async def test_recharges_list_paid_orders_oldest_first(paying: LiveServer) -> None:
    auth = await login(paying)
    first = (await order(paying, auth, product_id="coins_100"))["payid"]
    second = (await order(paying, auth, money="98.00", coins="1000"))["payid"]
    unpaid = (await order(paying, auth, product_id="coins_300"))["payid"]
    await notify(paying, {"payid": second, "money": 98, "trade_no": "T-2"})
    await notify(paying, {"payid": first, "money": "10", "trade_no": "T-1"})
    async with paying.services.engine.begin() as conn:  # pay times a minute apart
        await conn.execute(update(orders).where(orders.c.payid == second).values(paid_at=1e9))
        await conn.execute(update(orders).where(orders.c.payid == first).values(paid_at=1e9 + 60))
    r = await paying.post("/lwork/mobile/get_recharges", {"uuid": PHONE}, headers=auth)
    listed = r.json()["recharges"]
    assert [(e["money"], e["coins"], e["time"]) for e in listed] == [
        (98, 1000, "2001-09-09 09:46:40"),
        (10, 100, "2001-09-09 09:47:40"),
    ]
    assert (await state(paying, unpaid))[0] == "created"


async def test_get_payid_prices_come_from_the_catalogue(paying: LiveServer) -> None:
    auth = await login(paying)
    for fields in (
        {"money": 1, "coins": 100000},  # the original's free coins
        {"money": 30, "coins": 301},
        {"product_id": "minutes_100x1"},  # another group's product
        {"product_id": "nope"},
        {},
    ):
        assert await order(paying, auth, **fields) == {"status": "failed", "reason": "error_params"}
    assert await order(paying, auth, product_id="coins_100", pay_type="alipay") == {
        "status": "failed", "reason": "pay_type_not_enabled"}  # fmt: skip
    body = {"uuid": PHONE, "device_id": "d", "product_id": "coins_100"}  # alipay by default
    r = await paying.post("/lwork/mobile/get_payid", body, headers=auth)
    assert r.json() == {"status": "failed", "reason": "pay_type_not_enabled"}
    r = await paying.post("/lwork/mobile/get_payid", {**body, "money": "ten"}, headers=auth)
    assert (r.status_code, r.json()["field"]) == (400, "money")


async def test_get_payid_and_recharges_need_the_accounts_session(paying: LiveServer) -> None:
    await login(paying)
    body = {"uuid": PHONE, "device_id": "other", "product_id": "coins_100", "pay_type": "test"}
    r = await paying.post("/lwork/mobile/get_payid", body)
    assert r.json() == {"status": "failed", "reason": "no_logined"}
    r = await paying.post("/lwork/mobile/get_recharges", {"uuid": PHONE, "device_id": "other"})
    assert r.json() == {"status": "failed", "reason": "no_logined"}
    # without the token: the account's device, from the network of its long poll
    await paying.long_poll(PHONE, "d")
    r = await paying.post("/lwork/mobile/get_recharges", {"uuid": PHONE, "device_id": "d"})
    assert r.json() == {"status": "ok", "recharges": []}
    r = await paying.post("/lwork/mobile/get_recharges", {"uuid": PHONE})
    assert r.json() == {"status": "failed", "reason": "no_logined"}
    r = await paying.post("/lwork/mobile/get_payid", {**body, "device_id": "d"})
    assert r.json()["status"] == "ok"
    r = await paying.post("/lwork/mobile/get_payid", {**body, "uuid": "13900000000"})
    assert r.json() == {"status": "failed", "reason": "account_not_existed"}
    r = await paying.post("/lwork/mobile/get_recharges", {"uuid": "13900000000"})
    assert r.json() == {"status": "failed", "reason": "register_uuid_not_existed"}


async def test_bad_notifications_never_credit(paying: LiveServer) -> None:
    auth = await login(paying)
    payid = (await order(paying, auth, product_id="coins_300"))["payid"]
    paid = {"payid": payid, "money": "30.00", "trade_no": "T-9"}

    forged = await notify(paying, paid, secret="not-the-secret-at-all")
    assert (forged.status_code, forged.text) == (400, "failure")
    unsigned = await paying.client.post(paying.url + NOTIFY, json=paid)
    assert (unsigned.status_code, unsigned.text) == (400, "failure")
    unknown = await notify(paying, {**paid, "payid": "A" * 22})
    assert (unknown.status_code, unknown.text) == (404, "failure")
    for malformed in (b"{not json", b"[]", b'{"payid": 1}', b""):
        mac = hmac.new(SECRET.encode(), malformed, hashlib.sha256).hexdigest()
        r = await paying.client.post(paying.url + NOTIFY, content=malformed,
                                     headers={"X-Lwork-Signature": mac})  # fmt: skip
        assert (r.status_code, r.text) == (400, "failure")
    for money in ("lots", "1e999999999", "-30.00", "30.001"):
        r = await notify(paying, {**paid, "money": money})
        assert (r.status_code, r.text) == (400, "failure"), money
    r = await paying.get(NOTIFY)
    assert (r.status_code, r.json()["reason"]) == (405, "method_not_allowed")
    assert await coins(paying, auth) == 0
    assert await state(paying, payid) == ("created", None)

    # a verified notification for the wrong amount flags the order, acknowledged, no credit
    short = await notify(paying, {**paid, "money": "3.00"})
    assert (short.status_code, short.text) == (200, "success")
    assert await state(paying, payid) == ("flagged", "paid 300 fen for an order of 3000 fen")
    # and a right one afterwards does not credit the flagged order
    await notify(paying, {**paid, "trade_no": "T-10"})
    assert await coins(paying, auth) == 0


async def test_a_closed_order_is_flagged_not_credited(paying: LiveServer) -> None:
    auth = await login(paying)
    payid = (await order(paying, auth, product_id="coins_100"))["payid"]
    async with paying.services.engine.begin() as conn:  # past its expiry
        await conn.execute(update(orders).where(orders.c.payid == payid).values(expires_at=0))
    await order(paying, auth, product_id="coins_100")  # a new order closes expired ones
    assert await state(paying, payid) == ("closed", "expired")
    r = await notify(paying, {"payid": payid, "money": 10, "trade_no": "T-late"})
    assert (r.status_code, r.text) == (200, "success")
    assert (await state(paying, payid))[0] == "flagged"
    assert await coins(paying, auth) == 0


async def test_one_trade_number_credits_one_order(paying: LiveServer) -> None:
    auth = await login(paying)
    first = (await order(paying, auth, product_id="coins_100"))["payid"]
    second = (await order(paying, auth, product_id="coins_100"))["payid"]
    await notify(paying, {"payid": first, "money": 10, "trade_no": "T-same"})
    await notify(paying, {"payid": second, "money": 10, "trade_no": "T-same"})
    assert await coins(paying, auth) == 100
    assert (await state(paying, second))[0] == "flagged"


async def test_the_test_provider_is_off_unless_enabled(server: LiveServer) -> None:
    r = await notify(server, {"payid": "x", "money": 1, "trade_no": "t"})
    assert (r.status_code, r.json()["reason"]) == (404, "not_found")


async def test_a_thousand_duplicate_notifications_credit_once(paying: LiveServer) -> None:
    auth = await login(paying)
    payid = (await order(paying, auth, product_id="coins_1000"))["payid"]
    paid = {"payid": payid, "money": "98.00", "trade_no": "T-dup"}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        answers = await asyncio.gather(*(notify(paying, paid, client=client) for _ in range(1000)))
    assert {(r.status_code, r.text) for r in answers} == {(200, "success")}
    assert await coins(paying, auth) == 1000
    async with paying.services.engine.connect() as conn:
        refs = (await conn.execute(select(ledger.c.ref).where(ledger.c.uuid == PHONE))).all()
    assert [r.ref for r in refs] == ["pay:test:T-dup"]


async def test_notifications_racing_for_many_orders_settle_each_once(paying: LiveServer) -> None:
    """Notifications arriving together are settled together (one transaction per batch): each
    order's repeats credit it once, and of two orders paid by one trade one is credited and the
    other flagged, whatever lands in which batch."""
    auth = await login(paying)
    payids = [(await order(paying, auth, product_id="coins_100"))["payid"] for _ in range(12)]
    own = [{"payid": p, "money": 10, "trade_no": f"T-own-{n}"} for n, p in enumerate(payids[:6])]
    shared = [{"payid": p, "money": 10, "trade_no": f"T-pair-{n // 2}"}
              for n, p in enumerate(payids[6:])]  # fmt: skip
    sent = [body for body in own + shared for _ in range(4)]
    limits = httpx.Limits(max_connections=len(sent), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        answers = await asyncio.gather(*(notify(paying, b, client=client) for b in sent))
    assert {(r.status_code, r.text) for r in answers} == {(200, "success")}
    assert [(await state(paying, p))[0] for p in payids[:6]] == ["paid"] * 6
    pairs = [sorted([(await state(paying, a))[0], (await state(paying, b))[0]])
             for a, b in zip(payids[6::2], payids[7::2], strict=True)]  # fmt: skip
    assert pairs == [["flagged", "paid"]] * 3
    assert await coins(paying, auth) == 9 * 100


async def test_orders_are_counted_by_provider_and_the_state_they_enter(paying: LiveServer) -> None:
    """``lwork_orders_total``: created, paid, flagged and refunded orders, as a scraper sees
    them (the test provider refunds through the service, as the BOSS's ``refund`` does)."""
    auth = await login(paying)
    first = (await order(paying, auth, product_id="coins_100"))["payid"]
    second = (await order(paying, auth, product_id="coins_100"))["payid"]
    await notify(paying, {"payid": first, "money": 10, "trade_no": "T-count"})
    await notify(paying, {"payid": second, "money": 10, "trade_no": "T-count"})  # flagged
    await paying.services.payments.refund(first, None, "counted")
    text = (await paying.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})).text
    counted = {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lwork_orders_total" and sample.labels["provider"] == "test"
    }
    assert counted == {"created": 2, "paid": 1, "flagged": 1, "refunded": 1}
