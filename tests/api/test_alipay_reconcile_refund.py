"""Reconciliation and refunds through real HTTP (CONTRACT §8, §9): a fake Alipay gateway on a
loopback socket answers ``alipay.trade.query`` and ``alipay.trade.refund`` signed with its own
test-generated key; the BOSS asks for refunds and orders with signed requests."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update
from test_alipay import APP_ID, PHONE, SELLER, coins, login, open_order, state

from lwork.billing.rating import Balance
from lwork.storage.tables import balances, ledger, orders, refunds

from conftest import LiveServer
from fakes.alipay import FakeAlipay, FakeAlipayGateway, bare_public, new_key, private_pem
from fakes.boss_client import BossClient
from fakes.servers import serve_asgi

SECRET = "boss-secret-0123456789"


@dataclass
class World:
    server: LiveServer
    alipay: FakeAlipay
    gateway: FakeAlipayGateway
    boss: BossClient
    auth: dict[str, str]

    async def reconcile(self) -> dict[str, int]:
        """What ``lwork boss orders reconcile`` and the periodic task run: one round."""
        return dict(await self.server.services.payments.reconciler.round())

    async def notify(self, params: dict[str, str]) -> str:
        r = await self.alipay.post(self.server.url + "/lwork/pay/notify/alipay", params)
        return r.text

    async def refund(
        self, payid: str, request_id: str | None = None, later: int = 0, **extra: Any
    ) -> Any:
        """``later``: the BOSS signs its retry a little later (the same signature would be a
        replay)."""
        fields = {"request_id": request_id or secrets.token_hex(8), "payid": payid,
                  "reason": "buyer asked", **extra}  # fmt: skip
        signed = self.boss.signed("refund", fields, timestamp=int(time.time()) + later)
        return await self.boss.send(signed)


async def age(server: LiveServer, payid: str, seconds: float) -> None:
    """Time passes for one order: it was opened ``seconds`` earlier than it was."""
    async with server.services.engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.payid == payid).values(
            created_at=orders.c.created_at - seconds,
            expires_at=orders.c.expires_at - seconds))  # fmt: skip


def settings_for(fake: FakeAlipay, app_key: Any, gateway_url: str, every_s: float) -> Any:
    alipay = {
        "enabled": True, "app_id": APP_ID, "seller_id": SELLER,
        "app_private_key": private_pem(app_key), "alipay_public_key": bare_public(fake.key),
        "notify_url": "https://pay.example.com/lwork/pay/notify/alipay",
        "gateway_url": gateway_url, "timeout_s": 5,
    }  # fmt: skip
    return {"alipay": alipay, "reconcile_after_s": 600, "reconcile_every_s": every_s,
            "test": {"enabled": True, "secret": "test-secret-0123456789"}}  # fmt: skip


@pytest.fixture
async def world(server_factory: Callable[..., Any]) -> AsyncIterator[World]:
    async with started(server_factory, every_s=3600) as w:
        yield w


@contextlib.asynccontextmanager
async def started(factory: Callable[..., Any], every_s: float) -> AsyncIterator[World]:
    app_key = new_key()
    fake = FakeAlipay(APP_ID, SELLER, app_key.public_key())
    gateway = FakeAlipayGateway(fake)
    async with serve_asgi(gateway.app()) as gateway_base:
        payments = settings_for(fake, app_key, gateway_base + "/gateway.do", every_s)
        boss = {"keys": {"billing": [SECRET]}, "allowed_sources": ["127.0.0.0/8"]}
        async with factory(payments=payments, billing={"signup_gift_coins": 0},
                           boss=boss) as server:  # fmt: skip
            client = BossClient(server.url, "billing", SECRET)
            try:
                yield World(server, fake, gateway, client, await login(server))
            finally:
                await client.close()


async def test_the_periodic_round_settles_a_paid_order_whose_notification_never_came(
    server_factory: Callable[..., Any],
) -> None:
    async with started(server_factory, every_s=0.2) as w:
        payid = await open_order(w.server, w.auth, w.alipay)
        trade = w.gateway.pay(payid, "30.00")
        await asyncio.sleep(0.6)  # too young: not asked yet
        assert "alipay.trade.query" not in w.gateway.calls
        await age(w.server, payid, 601)
        for _ in range(50):
            if await coins(w.server, w.auth) == 300:
                break
            await asyncio.sleep(0.1)
        assert await coins(w.server, w.auth) == 300
        async with w.server.services.engine.connect() as conn:
            row = (await conn.execute(select(orders).where(orders.c.payid == payid))).one()
        assert (row.state, row.trade_no) == ("paid", trade["trade_no"])
        # The notification arrives at last: accepted, nothing more credited
        late = w.alipay.notification(payid, "30.00", trade_no=trade["trade_no"])
        assert await w.notify(late) == "success"
        assert await coins(w.server, w.auth) == 300
        recharges = await w.server.post(
            "/lwork/mobile/get_recharges", {"uuid": PHONE, "device_id": "d"}, headers=w.auth
        )
        assert [r["coins"] for r in recharges.json()["recharges"]] == [300]


async def test_a_notification_racing_reconciliation_credits_once(world: World) -> None:
    w = world
    for _ in range(3):
        payid = await open_order(w.server, w.auth, w.alipay)
        trade = w.gateway.pay(payid, "30.00")
        await age(w.server, payid, 601)
        paid = w.alipay.notification(payid, "30.00", trade_no=trade["trade_no"])
        await asyncio.gather(w.reconcile(), w.notify(paid), w.reconcile(), w.notify(paid))
    assert await coins(w.server, w.auth) == 900
    async with w.server.services.engine.connect() as conn:
        credits = (await conn.execute(select(ledger.c.ref).where(ledger.c.kind == "credit"))).all()
    assert len(credits) == 3


async def test_closed_unknown_and_waiting_orders_each_end_their_own_way(world: World) -> None:
    w = world
    closed = await open_order(w.server, w.auth, w.alipay)
    w.gateway.pay(closed, "30.00", status="TRADE_CLOSED")
    never_opened = await open_order(w.server, w.auth, w.alipay)
    still_open = await open_order(w.server, w.auth, w.alipay)
    waiting = await open_order(w.server, w.auth, w.alipay)
    w.gateway.pay(waiting, "30.00", status="WAIT_BUYER_PAY")
    for payid in (closed, never_opened, waiting):
        await age(w.server, payid, 1801)  # past order_ttl_s
    await age(w.server, still_open, 601)  # asked about, but not yet expired
    assert await w.reconcile() == {"closed": 1, "expired": 2, "waiting": 1}
    assert await state(w.server, closed) == ("closed", "closed by alipay")
    assert await state(w.server, never_opened) == ("closed", "expired")
    assert await state(w.server, waiting) == ("closed", "expired")
    assert await state(w.server, still_open) == ("created", None)
    assert await coins(w.server, w.auth) == 0


@pytest.mark.parametrize("trouble", ["system_error", "http_500", "forged_reply"])
async def test_an_unavailable_provider_leaves_its_orders_for_the_next_round(
    world: World, trouble: str
) -> None:
    w = world
    payid = await open_order(w.server, w.auth, w.alipay)
    w.gateway.pay(payid, "30.00")
    await age(w.server, payid, 601)
    # Another provider's expired order is still dealt with in the same round
    r = await w.server.post("/lwork/mobile/get_payid", {"uuid": PHONE, "device_id": "d",
                            "money": "30.00", "coins": 300, "pay_type": "test"},
                            headers=w.auth)  # fmt: skip
    other = r.json()["payid"]
    await age(w.server, other, 1801)
    w.gateway.system_error = trouble == "system_error"
    w.gateway.http_status = 500 if trouble == "http_500" else 200
    w.gateway.forge_replies = trouble == "forged_reply"
    assert await w.reconcile() == {"unavailable": 1, "expired": 1}
    assert await state(w.server, payid) == ("created", None)
    assert await state(w.server, other) == ("closed", "expired")
    assert await coins(w.server, w.auth) == 0
    w.gateway.system_error, w.gateway.http_status, w.gateway.forge_replies = False, 200, False
    assert await w.reconcile() == {"credited": 1}
    assert await coins(w.server, w.auth) == 300


async def paid_order(w: World) -> str:
    payid = await open_order(w.server, w.auth, w.alipay)
    trade = w.gateway.pay(payid, "30.00")
    assert await w.notify(w.alipay.notification(payid, "30.00", trade_no=trade["trade_no"])) == (
        "success"
    )
    return payid


async def test_a_refund_gives_the_money_back_and_takes_the_coins_once(world: World) -> None:
    w = world
    payid = await paid_order(w)
    assert await coins(w.server, w.auth) == 300
    r = await w.refund(payid, request_id="refund-1")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "ok" and answer["refund_state"] == "done"
    assert (answer["money"], answer["coins_taken"], answer["coins_short"]) == (30, 300, 0)
    assert await coins(w.server, w.auth) == 0
    assert await state(w.server, payid) == ("refunded", "refunded 3000 fen: buyer asked")
    assert w.gateway.refunded_fen(payid) == 3000
    # The BOSS retries (same request id), then asks again under a new one: nothing twice
    r2 = await w.refund(payid, request_id="refund-1", later=1)
    assert r2.json() == answer
    r3 = await w.refund(payid)
    assert r3.status_code == 200 and r3.json()["refund_no"] == answer["refund_no"]
    assert w.gateway.refunded_fen(payid) == 3000
    assert w.gateway.calls.count("alipay.trade.refund") == 1
    assert await coins(w.server, w.auth) == 0
    r = await w.server.post("/lwork/mobile/get_recharges", {"uuid": PHONE, "device_id": "d"},
                            headers=w.auth)  # fmt: skip
    assert r.json()["recharges"] == []  # refunded: no longer a recharge


async def test_a_refund_of_spent_coins_stops_at_zero_and_records_the_shortfall(
    world: World,
) -> None:
    w = world
    payid = await paid_order(w)
    async with w.server.services.engine.begin() as conn:  # the account spent 250 coins
        await conn.execute(update(balances).where(balances.c.uuid == PHONE).values(coins=5000))
    r = await w.refund(payid)
    assert r.status_code == 200, r.text
    assert (r.json()["coins_taken"], r.json()["coins_short"]) == (50, 250)
    assert await coins(w.server, w.auth) == 0
    async with w.server.services.engine.connect() as conn:
        row = (await conn.execute(select(refunds).where(refunds.c.payid == payid))).one()
        debit = (await conn.execute(select(ledger).where(ledger.c.kind == "refund"))).one()
    assert (row.coins_taken, row.coins_short) == (5000, 25000)
    assert (debit.coins, debit.forgiven) == (-5000, 25000)
    listed = await w.boss.call("orders", {"start": "2000-01-01", "end": "2100-01-01",
                                          "state": "refunded"})  # fmt: skip
    [order] = listed.json()["orders"]
    assert order["refund"]["coins_short"] == 250  # the operator sees what was lost


async def test_a_partial_refund_takes_back_its_share(world: World) -> None:
    w = world
    payid = await paid_order(w)
    r = await w.refund(payid, money=10.0)
    assert r.status_code == 200, r.text
    assert (r.json()["money"], r.json()["coins_taken"]) == (10, 100)
    assert await coins(w.server, w.auth) == 200
    assert w.gateway.refunded_fen(payid) == 1000
    again = await w.refund(payid, money=10.0)  # one refund per order
    assert again.json()["refund_no"] == r.json()["refund_no"]
    assert w.gateway.refunded_fen(payid) == 1000


async def test_refusals_are_clear_and_change_nothing(world: World) -> None:
    w = world
    r = await w.refund("NoSuchOrder0000000000")
    assert (r.status_code, r.json()["reason"]) == (404, "unknown_payid")
    unpaid = await open_order(w.server, w.auth, w.alipay)
    r = await w.refund(unpaid)
    assert (r.status_code, r.json()["reason"]) == (400, "not_paid")
    payid = await paid_order(w)
    r = await w.refund(payid, money=31.0)
    assert (r.status_code, r.json()["reason"]) == (400, "invalid_amount")
    w.gateway.trades[payid]["total_amount"] = "10.00"  # Alipay holds less than we ask back
    r = await w.refund(payid)
    assert (r.status_code, r.json()["reason"]) == (400, "refund_refused")
    assert "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" in r.json()["detail"]
    assert await coins(w.server, w.auth) == 300
    assert await state(w.server, payid) == ("paid", None)
    r = await w.boss.call("refund", {"request_id": "x", "payid": payid})  # no reason
    assert (r.status_code, r.json()["reason"]) == (400, "invalid_params")


async def test_a_refund_while_alipay_is_down_is_done_once_when_retried(world: World) -> None:
    w = world
    payid = await paid_order(w)
    w.gateway.system_error = True
    r = await w.refund(payid, request_id="refund-down")
    assert r.status_code == 503
    assert await coins(w.server, w.auth) == 300
    w.gateway.system_error = False
    r = await w.refund(payid, request_id="refund-down", later=1)
    assert r.status_code == 200, r.text
    assert await coins(w.server, w.auth) == 0
    assert w.gateway.refunded_fen(payid) == 3000
    async with w.server.services.engine.connect() as conn:
        rows = (await conn.execute(select(refunds.c.refund_no))).all()
    assert len(rows) == 1  # the retry asked under the same refund number


async def test_boss_orders_lists_and_filters(world: World) -> None:
    w = world
    paid = await paid_order(w)
    waiting = await open_order(w.server, w.auth, w.alipay)
    everything = await w.boss.call("orders", {"start": "2000-01-01", "end": "2100-01-01"})
    assert everything.status_code == 200, everything.text
    listed = everything.json()
    assert listed["truncated"] is False
    assert [o["payid"] for o in listed["orders"]] == [paid, waiting]
    first = listed["orders"][0]
    assert first["trade_no"] == w.gateway.trades[paid]["trade_no"]
    assert (first["state"], first["account"], first["pay_type"], first["money"]) == (
        "paid", PHONE, "alipay", 30)  # fmt: skip
    only = await w.boss.call("orders", {"start": "2000-01-01", "end": "2100-01-01",
                                        "state": "created", "account": PHONE})  # fmt: skip
    assert [o["payid"] for o in only.json()["orders"]] == [waiting]
    none = await w.boss.call("orders", {"start": "2000-01-01", "end": "2000-01-02"})
    assert none.json()["orders"] == []
    bad = await w.boss.call("orders", {"start": "2000-01-01", "end": "2100-01-01",
                                       "account": "13999999999"})  # fmt: skip
    assert (bad.status_code, bad.json()["reason"]) == (400, "account_not_exist")
    bad = await w.boss.call("orders", {"start": "2000-01-01", "end": "2100-01-01",
                                       "state": "lost"})  # fmt: skip
    assert bad.json()["reason"] == "invalid_params"


async def test_racing_refunds_of_one_order_refund_and_take_back_once(world: World) -> None:
    w = world
    payid = await paid_order(w)
    answers = await asyncio.gather(*(w.refund(payid) for _ in range(4)))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    assert len({r.json()["refund_no"] for r in answers}) == 1
    assert w.gateway.refunded_fen(payid) == 3000
    assert await coins(w.server, w.auth) == 0
    async with w.server.services.engine.connect() as conn:
        debits = (await conn.execute(select(ledger).where(ledger.c.kind == "refund"))).all()
    assert len(debits) == 1


async def test_a_refund_cut_short_after_alipay_gave_the_money_back_completes_once(
    world: World,
) -> None:
    """The server stopped after Alipay refunded but before the ledger changed: the refund row
    is still ``asked``; the operator's retry asks under the same number and Alipay, which
    knows it, gives nothing more."""
    w = world
    payid = await paid_order(w)
    w.gateway.http_status = 504  # the answer is lost on the way back ...
    assert (await w.refund(payid, request_id="cut")).status_code == 503
    w.gateway.refunds[f"{payid}R1"] = 3000  # ... after Alipay had refunded
    w.gateway.http_status = 200
    r = await w.refund(payid, request_id="cut", later=1)
    assert r.status_code == 200, r.text
    assert (r.json()["refund_no"], r.json()["coins_taken"]) == (f"{payid}R1", 300)
    assert w.gateway.refunded_fen(payid) == 3000
    assert await coins(w.server, w.auth) == 0


async def refund_notice(w: World, payid: str, refunded: str, status: str, biz_no: str) -> str:
    """Alipay's notification of a refund, on the payment's notify_url: ``refund_fee`` is all
    refunded so far, ``out_biz_no`` the refund's number."""
    trade = w.gateway.trades[payid]["trade_no"] if payid in w.gateway.trades else "2026x"
    notice = w.alipay.notification(
        payid, "30.00", trade_no=trade, trade_status=status, refund_fee=refunded,
        gmt_refund=time.strftime("%Y-%m-%d %H:%M:%S"), out_biz_no=biz_no,
    )  # fmt: skip
    return await w.notify(notice)


async def test_a_refund_made_in_alipays_console_takes_the_coins_back_once(world: World) -> None:
    w = world
    payid = await paid_order(w)
    assert await refund_notice(w, payid, "30.00", "TRADE_CLOSED", "console-1") == "success"
    assert await coins(w.server, w.auth) == 0
    assert (await state(w.server, payid))[0] == "refunded"
    assert await refund_notice(w, payid, "30.00", "TRADE_CLOSED", "console-1") == "success"
    assert await coins(w.server, w.auth) == 0  # announced again: taken once
    async with w.server.services.engine.connect() as conn:
        row = (await conn.execute(select(refunds).where(refunds.c.payid == payid))).one()
    assert (row.money, row.state, row.provider_refund_no) == (3000, "done", "console-1")


async def test_a_partial_refund_in_alipays_console_takes_its_share(world: World) -> None:
    w = world
    payid = await paid_order(w)
    assert await refund_notice(w, payid, "10.00", "TRADE_SUCCESS", "console-2") == "success"
    assert await coins(w.server, w.auth) == 200  # a third of the price: a third of the coins
    assert (await state(w.server, payid))[0] == "refunded"


async def test_a_second_partial_refund_in_alipays_console_takes_its_share_again(
    world: World,
) -> None:
    """refund_fee is all refunded so far: each new out_biz_no takes back what it adds, once,
    whatever order the notices come in and however often."""
    w = world
    payid = await paid_order(w)
    assert await refund_notice(w, payid, "10.00", "TRADE_SUCCESS", "console-a") == "success"
    assert await coins(w.server, w.auth) == 200
    assert await refund_notice(w, payid, "15.00", "TRADE_SUCCESS", "console-b") == "success"
    assert await coins(w.server, w.auth) == 150  # 5.00 more: 50 coins more
    for biz_no, refunded in (("console-a", "10.00"), ("console-b", "15.00")):  # again: nothing
        assert await refund_notice(w, payid, refunded, "TRADE_SUCCESS", biz_no) == "success"
    assert await coins(w.server, w.auth) == 150
    # the rest, the trade closes: the whole credit is back, not a coin more
    assert await refund_notice(w, payid, "30.00", "TRADE_CLOSED", "console-c") == "success"
    assert await coins(w.server, w.auth) == 0
    async with w.server.services.engine.connect() as conn:
        rows = (await conn.execute(select(refunds).where(refunds.c.payid == payid)
                                   .order_by(refunds.c.created_at))).all()  # fmt: skip
        debits = (await conn.execute(select(ledger.c.coins).where(ledger.c.kind == "refund")
                                     .order_by(ledger.c.id))).scalars().all()  # fmt: skip
    assert [(r.money, r.state, r.provider_refund_no) for r in rows] == [
        (1000, "done", "console-a"), (500, "done", "console-b"), (1500, "done", "console-c"),
    ]  # fmt: skip
    assert list(debits) == [-10000, -5000, -15000]
    assert (await state(w.server, payid))[0] == "refunded"
    # The operator's refund of the order answers the refunds made: nothing asked of Alipay
    r = await w.refund(payid)
    assert r.status_code == 200 and r.json()["refund_no"] == rows[0].refund_no
    assert "alipay.trade.refund" not in w.gateway.calls


async def test_the_notice_of_our_own_refund_takes_nothing_more(world: World) -> None:
    w = world
    payid = await paid_order(w)
    answer = (await w.refund(payid)).json()
    assert answer["status"] == "ok" and await coins(w.server, w.auth) == 0
    await w.server.services.billing.ledger.credit(PHONE, "credit:more", Balance(coins=50000), None,
                                                  time.time())  # fmt: skip
    notice = await refund_notice(w, payid, "30.00", "TRADE_CLOSED", answer["refund_no"])
    assert notice == "success"
    assert await coins(w.server, w.auth) == 500


async def test_a_closed_trade_without_a_refund_still_closes_an_unpaid_order(world: World) -> None:
    w = world
    payid = await open_order(w.server, w.auth, w.alipay)
    closing = w.alipay.notification(payid, "30.00", trade_status="TRADE_CLOSED")
    assert await w.notify(closing) == "success"
    assert (await state(w.server, payid))[0] == "closed"
    too_much = w.alipay.notification(payid, "30.00", trade_status="TRADE_CLOSED",
                                     refund_fee="31.00")  # fmt: skip
    r = await w.alipay.post(w.server.url + "/lwork/pay/notify/alipay", too_much)
    assert r.status_code == 400


async def refund_rows(w: World, payid: str) -> list[tuple[int, str, int, int]]:
    """The order's refunds as (fen, state, coin cents taken, coin cents short), oldest first."""
    query = select(refunds).where(refunds.c.payid == payid)
    async with w.server.services.engine.connect() as conn:
        rows = await conn.execute(query.order_by(refunds.c.created_at, refunds.c.refund_no))
    return [(r.money, r.state, r.coins_taken, r.coins_short) for r in rows]


async def refund_debits(w: World) -> list[tuple[int, int]]:
    """The ledger's refund rows as (coin cents, forgiven), oldest first."""
    async with w.server.services.engine.connect() as conn:
        query = select(ledger.c.coins, ledger.c.forgiven).where(ledger.c.kind == "refund")
        return [(r.coins, r.forgiven) for r in (await conn.execute(query.order_by(ledger.c.id)))]


async def test_partial_refunds_in_alipays_console_without_a_number_each_take_their_share(
    world: World,
) -> None:
    """Refunds made in Alipay's console may come without out_biz_no: every notice of the trade
    then looks alike but for refund_fee, all refunded so far. Each refund takes back what it
    adds to that, once, however often and in whatever order the notices come; the last one,
    which closes the trade, never below zero."""
    w = world
    payid = await paid_order(w)
    first = w.gateway.console_refund(payid, "10.00")
    assert await w.notify(first) == "success"
    assert await coins(w.server, w.auth) == 200  # a third of the price: a third of the coins
    assert (await state(w.server, payid))[0] == "refunded"
    assert await w.notify(first) == "success"  # Alipay sends it again
    assert await coins(w.server, w.auth) == 200
    assert await refund_rows(w, payid) == [(1000, "done", 10000, 0)]

    second = w.gateway.console_refund(payid, "5.00")
    assert second["refund_fee"] == "15.00" and second["trade_status"] == "TRADE_SUCCESS"
    assert await w.notify(second) == "success"
    assert await coins(w.server, w.auth) == 150  # 5.00 more: 50 coins more
    for again in (second, first):  # repeated, the older one last: nothing more
        assert await w.notify(again) == "success"
    assert await coins(w.server, w.auth) == 150
    assert await refund_rows(w, payid) == [(1000, "done", 10000, 0), (500, "done", 5000, 0)]
    assert await refund_debits(w) == [(-10000, 0), (-5000, 0)]

    async with w.server.services.engine.begin() as conn:  # 100 of the 150 coins are spent
        await conn.execute(update(balances).where(balances.c.uuid == PHONE).values(coins=5000))
    rest = w.gateway.console_refund(payid, "15.00")
    assert rest["trade_status"] == "TRADE_CLOSED"
    assert await w.notify(rest) == "success"
    assert await w.notify(rest) == "success"
    assert await coins(w.server, w.auth) == 0  # 150 due, 50 left: 100 short
    assert await refund_rows(w, payid) == [
        (1000, "done", 10000, 0), (500, "done", 5000, 0), (1500, "done", 5000, 10000),
    ]  # fmt: skip
    assert await refund_debits(w) == [(-10000, 0), (-5000, 0), (-5000, 10000)]
    assert (await state(w.server, payid))[0] == "refunded"
    assert w.gateway.refunded_fen(payid) == 3000
    assert "alipay.trade.refund" not in w.gateway.calls


async def test_a_console_refund_after_ours_takes_only_its_own_share(world: World) -> None:
    """Our refund of 10.00 through the API, its notice (out_biz_no: our number), then 5.00
    refunded in the console without a number: 50 coins more, not 150 nor none."""
    w = world
    payid = await paid_order(w)
    ours = (await w.refund(payid, money=10.0)).json()
    assert ours["coins_taken"] == 100 and await coins(w.server, w.auth) == 200
    assert await w.notify(w.gateway.refund_notification(payid, ours["refund_no"])) == "success"
    assert await coins(w.server, w.auth) == 200  # the notice of ours: nothing more
    console = w.gateway.console_refund(payid, "5.00")
    assert await w.notify(console) == "success"
    assert await w.notify(console) == "success"
    assert await coins(w.server, w.auth) == 150
    assert [row[:2] for row in await refund_rows(w, payid)] == [(1000, "done"), (500, "done")]


async def test_racing_repeats_of_console_refunds_take_back_once(world: World) -> None:
    """Alipay's retries of two unnumbered partial refunds' notices, all at once: 10.00 and
    5.00 taken back, once each."""
    w = world
    payid = await paid_order(w)
    first = w.gateway.console_refund(payid, "10.00")
    second = w.gateway.console_refund(payid, "5.00")
    answers = await asyncio.gather(*(w.notify(n) for n in [first, second] * 10))
    assert answers == ["success"] * 20
    assert await coins(w.server, w.auth) == 150
    assert sum(row[0] for row in await refund_rows(w, payid)) == 1500
    assert sum(coins for coins, _ in await refund_debits(w)) == -15000


async def test_a_console_refund_told_while_ours_is_unanswered_waits_for_ours(
    world: World,
) -> None:
    """Our refund of 10.00 reaches Alipay but its answer is lost; then 5.00 is refunded in the
    console, whose notice says 15.00 refunded in all. Whether ours is in that sum cannot be
    told yet: the notice is refused (Alipay sends it again) and nothing is taken back; once
    the operator's retry has ours answered, the notice's next try takes back the 5.00 alone."""
    w = world
    payid = await paid_order(w)
    w.gateway.http_status = 503
    assert (await w.refund(payid, money=10.0)).status_code != 200
    w.gateway.refunds[f"{payid}R1"] = 1000  # ... Alipay had refunded it
    w.gateway.http_status = 200
    console = w.gateway.console_refund(payid, "5.00")
    r = await w.alipay.post(w.server.url + "/lwork/pay/notify/alipay", console)
    assert (r.status_code, r.text) == (409, "failure")
    assert await coins(w.server, w.auth) == 300
    retried = await w.refund(payid, money=10.0, later=1)
    assert (retried.status_code, retried.json()["coins_taken"]) == (200, 100)
    assert await w.notify(console) == "success"  # Alipay's next try
    assert await coins(w.server, w.auth) == 150  # 15.00 of 30.00 refunded: half the coins
    ours = w.gateway.refund_notification(payid, f"{payid}R1")  # ours, told late: nothing more
    assert await w.notify(ours) == "success"
    assert await coins(w.server, w.auth) == 150
    assert [row[:3] for row in await refund_rows(w, payid)] == [
        (1000, "done", 10000), (500, "done", 5000),
    ]  # fmt: skip


async def test_a_payment_notification_with_a_zero_refund_fee_credits(world: World) -> None:
    """refund_fee=0.00 on a payment's notification refunds nothing: credited, not refused."""
    w = world
    payid = await open_order(w.server, w.auth, w.alipay)
    trade = w.gateway.pay(payid, "30.00")
    notice = w.alipay.notification(payid, "30.00", trade_no=trade["trade_no"], refund_fee="0.00")
    assert await w.notify(notice) == "success"
    assert await coins(w.server, w.auth) == 300
    assert (await state(w.server, payid))[0] == "paid"
