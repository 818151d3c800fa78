"""WeChat Pay API v3 through real HTTP (CONTRACT §8), against a fake WeChat Pay with its own
test-generated platform key and the merchant's public key: the server opens the App order and
signs the app's parameters, believes only notifications signed by a listed serial within the
window and decrypting under the API v3 key, credits once, flags another merchant, app or
amount, settles a lost notification by querying, and refunds through the API."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from test_alipay import PHONE, coins, login, state

from conftest import LiveServer
from fakes.boss_client import BossClient
from fakes.servers import serve_asgi
from fakes.wechatpay import (
    APP_ID,
    MCH_ID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    FakeWechatPay,
    new_key,
    private_pem,
    public_pem,
)

NOTIFY = "/lwork/pay/notify/wechat"
BOSS_SECRET = "boss-secret-0123456789"


@dataclass
class World:
    server: LiveServer
    fake: FakeWechatPay
    auth: dict[str, str]
    merchant_public: Any

    async def open_order(self) -> str:
        body = {"uuid": PHONE, "device_id": "d", "money": "30.00", "coins": 300,
                "pay_type": "wechat"}  # fmt: skip
        answer = (await self.server.post("/lwork/mobile/get_payid", body, headers=self.auth)).json()
        assert answer["status"] == "ok" and set(answer) == {"status", "payid", "uuid", "wechat"}
        return str(answer["payid"])

    async def notify(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        return await self.fake.post(self.server.url + NOTIFY, body, headers)


def wechat_settings(fake: FakeWechatPay, merchant: Any, api_url: str) -> dict[str, Any]:
    return {
        "enabled": True, "app_id": APP_ID, "mch_id": MCH_ID,
        "merchant_serial_no": MERCHANT_SERIAL, "merchant_private_key": private_pem(merchant),
        "api_v3_key": fake.api_v3_key.decode(),
        "platform_keys": {PLATFORM_SERIAL: public_pem(fake.key)},
        "notify_url": "https://pay.example.com/lwork/pay/notify/wechat", "api_url": api_url,
        "timeout_s": 5,
    }  # fmt: skip


@contextlib.asynccontextmanager
async def started(factory: Callable[..., Any], **payments: Any) -> AsyncIterator[World]:
    """The server with WeChat Pay enabled against a fresh fake (``payments``: more of the
    section, such as the reconciliation's timing), and an account logged in."""
    merchant = new_key()
    fake = FakeWechatPay(merchant.public_key(), secrets.token_hex(16).encode())
    async with serve_asgi(fake.app()) as api_url:
        wechat = wechat_settings(fake, merchant, api_url)
        boss = {"keys": {"billing": [BOSS_SECRET]}, "allowed_sources": ["127.0.0.0/8"]}
        async with factory(payments={"wechat": wechat, **payments}, boss=boss,
                           billing={"signup_gift_coins": 0}) as server:  # fmt: skip
            yield World(server, fake, await login(server), merchant.public_key())


@pytest.fixture
async def world(server_factory: Callable[..., Any]) -> AsyncIterator[World]:
    async with started(server_factory) as w:
        yield w


async def test_an_order_gets_signed_app_parameters_and_its_payment_credits_once(
    world: World,
) -> None:
    w = world
    body = {"uuid": PHONE, "device_id": "d", "money": "30.00", "coins": 300, "pay_type": "wechat"}
    answer = (await w.server.post("/lwork/mobile/get_payid", body, headers=w.auth)).json()
    app = answer["wechat"]
    assert (app["appid"], app["partnerid"], app["package"]) == (APP_ID, MCH_ID, "Sign=WXPay")
    signed = f"{APP_ID}\n{app['timestamp']}\n{app['noncestr']}\n{app['prepayid']}\n".encode()
    w.merchant_public.verify(
        base64.b64decode(app["sign"]), signed, padding.PKCS1v15(), hashes.SHA256()
    )  # fmt: skip  (the WeChat SDK would refuse it)
    opened = w.fake.orders[answer["payid"]]
    assert opened["amount"] == {"total": 3000, "currency": "CNY"}
    assert opened["notify_url"] == "https://pay.example.com/lwork/pay/notify/wechat"
    assert "merchant_private_key" not in json.dumps(answer)

    paid = w.fake.notification(w.fake.pay(answer["payid"]))
    r = await w.notify(paid)
    assert (r.status_code, r.content) == (204, b"")
    assert await coins(w.server, w.auth) == 300
    assert (await w.notify(paid)).status_code == 204  # WeChat sends it again: nothing more
    assert await coins(w.server, w.auth) == 300
    assert (await state(w.server, answer["payid"]))[0] == "paid"


async def test_unbelievable_notifications_are_refused_and_never_credited(world: World) -> None:
    w = world
    payid = await w.open_order()
    transaction = w.fake.pay(payid)
    good = w.fake.notification(transaction)
    envelope = json.loads(good)
    flipped = envelope["resource"]["ciphertext"]
    envelope["resource"]["ciphertext"] = ("A" if flipped[0] != "A" else "B") + flipped[1:]
    tampered = json.dumps(envelope).encode()
    wrong_key = w.fake.notification(transaction, key=secrets.token_hex(16).encode())
    w.fake.forge_replies = True
    forged = w.fake.signed_headers(good)
    w.fake.forge_replies = False
    cases = {
        "forged signature": (good, forged),
        "unknown serial": (good, w.fake.signed_headers(good, serial="PUB_KEY_ID_OTHER")),
        "stale timestamp": (good, w.fake.signed_headers(good, at=time.time() - 600)),
        "future timestamp": (good, w.fake.signed_headers(good, at=time.time() + 600)),
        "tampered ciphertext": (tampered, None),
        "another API v3 key": (wrong_key, None),
        "not JSON": (b"{not json", None),
        "no resource": (b'{"event_type": "TRANSACTION.SUCCESS"}', None),
    }
    for why, (body, headers) in cases.items():
        w.fake.attempts.clear()
        r = await w.notify(body, headers)
        assert r.status_code == 400, why
        assert r.json()["code"] == "FAIL", why
        assert len(w.fake.attempts) == 3, why  # not acknowledged: WeChat keeps trying
    assert await coins(w.server, w.auth) == 0
    assert await state(w.server, payid) == ("created", None)
    unknown = w.fake.notification({**transaction, "out_trade_no": "NoSuchOrder0000000000"})
    assert (await w.notify(unknown)).status_code == 404


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"mchid": "1900000999"}, "mchid '1900000999' is not ours"),
        ({"appid": "wx0000000000000000"}, "appid 'wx0000000000000000' is not ours"),
        ({"amount": {"total": 1, "currency": "CNY"}}, "paid 1 fen for an order of 3000 fen"),
        ({"amount": {"total": 3000, "currency": "USD"}}, "amount.currency 'USD' is not CNY"),
        ({"amount": {"total": 3000}}, "amount.currency 'None' is not CNY"),
    ],
    ids=["merchant", "app", "amount", "currency", "no-currency"],
)
async def test_a_payment_for_another_merchant_app_or_amount_is_flagged(
    world: World, override: dict[str, Any], why: str
) -> None:
    w = world
    payid = await w.open_order()
    r = await w.notify(w.fake.notification(w.fake.pay(payid, **override)))
    assert r.status_code == 204  # believed (signed), so acknowledged; but not credited
    assert await state(w.server, payid) == ("flagged", why)
    assert await coins(w.server, w.auth) == 0


async def test_a_lost_notification_is_settled_by_querying_wechat(world: World) -> None:
    w = world
    payid, unpaid = await w.open_order(), await w.open_order()
    transaction = w.fake.pay(payid)
    provider = w.server.services.payments.providers["wechat"]
    assert await provider.query(unpaid) is None  # ORDER_NOT_EXIST: never paid
    notice = await provider.query(payid)
    assert notice is not None and (notice.event, notice.money_fen) == ("paid", 3000)
    assert notice.trade_no == transaction["transaction_id"]
    w.fake.forge_replies = True  # a reply not signed by WeChat is not believed
    with pytest.raises(Exception, match="not verified"):
        await provider.query(payid)
    w.fake.forge_replies, w.fake.system_error = False, True
    with pytest.raises(Exception, match="HTTP 500"):
        await provider.query(payid)
    assert "GET /v3/pay/transactions/out-trade-no/" + payid in w.fake.requests


async def test_get_payid_when_wechat_is_down_fails_cleanly_and_keeps_no_order(world: World) -> None:
    w = world
    w.fake.system_error = True
    body = {"uuid": PHONE, "device_id": "d", "money": "30.00", "coins": 300, "pay_type": "wechat"}
    r = await w.server.post("/lwork/mobile/get_payid", body, headers=w.auth)
    assert r.status_code == 200
    assert r.json() == {"status": "failed", "reason": "service_not_available"}
    assert not w.fake.orders  # and the order was not kept


async def test_a_refund_goes_through_wechat_and_takes_the_coins_back(world: World) -> None:
    w = world
    payid = await w.open_order()
    assert (await w.notify(w.fake.notification(w.fake.pay(payid)))).status_code == 204
    boss = BossClient(w.server.url, "billing", BOSS_SECRET)
    try:
        fields = {"request_id": "r-1", "payid": payid, "reason": "buyer asked"}
        r = await boss.send(boss.signed("refund", fields, timestamp=int(time.time())))
    finally:
        await boss.close()
    assert r.status_code == 200, r.text
    assert (r.json()["refund_state"], r.json()["coins_taken"]) == ("done", 300)
    [refund] = w.fake.refunds.values()
    assert refund["amount"] == {"refund": 3000, "total": 3000, "currency": "CNY"}
    # WeChat tells this address how a refund ends (REFUND.SUCCESS, or ABNORMAL / CLOSED)
    assert w.fake.refund_requests[0]["notify_url"] == (
        "https://pay.example.com/lwork/pay/notify/wechat"
    )
    assert refund["out_refund_no"] == r.json()["refund_no"]
    assert await coins(w.server, w.auth) == 0


async def test_a_refund_made_in_wechats_platform_takes_its_share_back_once(world: World) -> None:
    w = world
    payid = await w.open_order()
    transaction = w.fake.pay(payid)
    assert (await w.notify(w.fake.notification(transaction))).status_code == 204
    refund = {"mchid": MCH_ID, "out_trade_no": payid, "transaction_id": transaction[
        "transaction_id"], "out_refund_no": "console-1", "refund_id": "50300000001",
        "refund_status": "SUCCESS", "amount": {"total": 3000, "refund": 1500,
        "payer_total": 3000, "payer_refund": 1500}}  # fmt: skip
    notice = w.fake.notification(refund, event="REFUND.SUCCESS")
    for _ in range(2):  # WeChat may send it again: taken back once
        assert (await w.notify(notice)).status_code == 204
    assert await coins(w.server, w.auth) == 150
    assert (await state(w.server, payid))[0] == "refunded"
    closed = w.fake.notification({**refund, "refund_status": "CLOSED"}, event="REFUND.CLOSED")
    assert (await w.notify(closed)).status_code == 204
    assert await coins(w.server, w.auth) == 150
