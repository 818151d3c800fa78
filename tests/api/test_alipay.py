"""Alipay App Pay through real HTTP (CONTRACT §8), against a fake Alipay holding its own
test-generated RSA key: the server signs the order string, verifies notifications, credits
once, flags another app or seller, and answers ``failure`` to anything it cannot believe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from lwork.storage.tables import orders

from conftest import LiveServer
from fakes.alipay import FakeAlipay, bare_public, new_key, private_pem

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"
APP_ID = "2021000000000001"
SELLER = "2088000000000001"


@pytest.fixture
async def alipay(
    server_factory: Callable[..., Any],
) -> AsyncIterator[tuple[LiveServer, FakeAlipay]]:
    app_key = new_key()
    fake = FakeAlipay(APP_ID, SELLER, app_key.public_key())
    settings = {"alipay": {
        "enabled": True, "app_id": APP_ID, "seller_id": SELLER,
        "app_private_key": private_pem(app_key), "alipay_public_key": bare_public(fake.key),
        "notify_url": "https://pay.example.com/lwork/pay/notify/alipay",
    }}  # fmt: skip
    async with server_factory(payments=settings, billing={"signup_gift_coins": 0}) as live:
        yield live, fake


async def login(server: LiveServer, phone: str = PHONE) -> dict[str, str]:
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    body = {"uuid": phone, "device_id": "d", "auth_code": server.gateway.last_code(phone),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": phone, "pwd": PWD, "device_id": "d"})
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def open_order(server: LiveServer, auth: dict[str, str], fake: FakeAlipay) -> str:
    body = {"uuid": PHONE, "device_id": "d", "money": "30.00", "coins": 300}  # alipay: default
    answer = (await server.post("/lwork/mobile/get_payid", body, headers=auth)).json()
    assert answer["status"] == "ok" and set(answer) == {"status", "payid", "uuid", "alipay_order"}
    opened = fake.open_order(answer["alipay_order"])  # raises unless the server signed it
    assert opened["app_id"] == APP_ID
    assert opened["notify_url"] == "https://pay.example.com/lwork/pay/notify/alipay"
    biz = opened["biz_content"]
    assert (biz["out_trade_no"], biz["total_amount"]) == (answer["payid"], "30.00")
    assert biz["product_code"] == "QUICK_MSECURITY_PAY"
    payid: str = answer["payid"]
    return payid


async def coins(server: LiveServer, auth: dict[str, str], phone: str = PHONE) -> Any:
    return (await server.post("/lwork/mobile/get_coin", {"uuid": phone}, headers=auth)).json()[
        "coins"
    ]


async def state(server: LiveServer, payid: str) -> tuple[str, str | None]:
    async with server.services.engine.connect() as conn:
        row = (await conn.execute(select(orders).where(orders.c.payid == payid))).one()
    return row.state, row.note


async def test_an_alipay_order_is_signed_and_its_payment_credited_once(
    alipay: tuple[LiveServer, FakeAlipay],
) -> None:
    server, fake = alipay
    auth = await login(server)
    payid = await open_order(server, auth, fake)
    waiting = fake.notification(payid, "30.00", trade_status="WAIT_BUYER_PAY")
    r = await fake.post(server.url + "/lwork/pay/notify/alipay", waiting)
    assert (r.status_code, r.text) == (200, "success")
    assert await state(server, payid) == ("created", None)

    paid = fake.notification(payid, "30.00")
    r = await fake.post(server.url + "/lwork/pay/notify/alipay", paid)
    assert (r.status_code, r.text) == (200, "success")
    assert await coins(server, auth) == 300
    # Alipay sends it again (and to the original's path): accepted, nothing changes
    for path in ("/lwork/pay/notify/alipay", "/lwork/mobile/paytest"):
        assert (await fake.post(server.url + path, paid)).text == "success"
    assert await coins(server, auth) == 300
    assert await state(server, payid) == ("paid", None)


async def test_the_originals_paytest_path_is_the_same_handler(
    alipay: tuple[LiveServer, FakeAlipay],
) -> None:
    server, fake = alipay
    auth = await login(server)
    payid = await open_order(server, auth, fake)
    r = await fake.post(server.url + "/lwork/mobile/paytest", fake.notification(payid, "30.00"))
    assert (r.status_code, r.text) == (200, "success")
    assert await coins(server, auth) == 300


async def test_unbelievable_notifications_are_refused_and_retried_never_credited(
    alipay: tuple[LiveServer, FakeAlipay],
) -> None:
    server, fake = alipay
    auth = await login(server)
    payid = await open_order(server, auth, fake)
    url = server.url + "/lwork/pay/notify/alipay"
    forged = fake.sign(fake.notification(payid, "30.00"), key=new_key())
    tampered = {**fake.notification(payid, "0.01"), "total_amount": "30.00"}
    tampered_back = {**fake.notification(payid, "30.00"), "total_amount": "0.01"}
    unsigned = {k: v for k, v in fake.notification(payid, "30.00").items() if k != "sign"}
    unknown = fake.notification("NoSuchOrder0000000000", "30.00")
    for bad in (forged, tampered, tampered_back, unsigned):
        fake.attempts.clear()
        r = await fake.post(url, bad)
        assert (r.status_code, r.text) == (400, "failure")
        assert len(fake.attempts) == 3  # not acknowledged: Alipay keeps trying
    r = await fake.post(url, unknown)
    assert (r.status_code, r.text) == (404, "failure")
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(url, content=b"\xff\xfe=%%%", headers={
            "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert (r.status_code, r.text) == (400, "failure")
    assert await coins(server, auth) == 0
    assert await state(server, payid) == ("created", None)


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"app_id": "2021999999999999"}, "app_id '2021999999999999' is not ours"),
        ({"seller_id": "2088999999999999"}, "seller_id '2088999999999999' is not ours"),
        ({"total_amount": "3.00"}, "paid 300 fen for an order of 3000 fen"),
    ],
)
async def test_another_app_seller_or_amount_flags_the_order(
    alipay: tuple[LiveServer, FakeAlipay], override: dict[str, str], why: str
) -> None:
    server, fake = alipay
    auth = await login(server)
    payid = await open_order(server, auth, fake)
    r = await fake.post(server.url + "/lwork/pay/notify/alipay",
                        fake.notification(payid, "30.00", **override))  # fmt: skip
    assert (r.status_code, r.text) == (200, "success")
    assert await state(server, payid) == ("flagged", why)
    assert await coins(server, auth) == 0


async def test_trade_closed_closes_an_unpaid_order(alipay: tuple[LiveServer, FakeAlipay]) -> None:
    server, fake = alipay
    auth = await login(server)
    payid = await open_order(server, auth, fake)
    closed = fake.notification(payid, "30.00", trade_status="TRADE_CLOSED")
    assert (await fake.post(server.url + "/lwork/pay/notify/alipay", closed)).text == "success"
    assert await state(server, payid) == ("closed", "closed by alipay")
