"""WeChat Pay's reconciliation, refunds and failures through real HTTP (CONTRACT §8, §9), against
the fake WeChat Pay API v3 on a loopback socket: orders whose notification never came are
settled from WeChat's answer to the query by ``out_trade_no`` in each of its states (by the
server's own round, and by ``lwork boss orders reconcile`` as a separate process); refunds
WeChat answers PROCESSING wait for its ``REFUND.*`` notice; the notify endpoint answers in
WeChat's error form; a thousand duplicates credit once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from test_alipay import PHONE, coins, state
from test_wechatpay import BOSS_SECRET, NOTIFY, World, started

from lwork.billing.rating import Balance
from lwork.storage.tables import ledger, orders, refunds

from fakes.boss_client import BossClient
from fakes.wechatpay import MCH_ID, PLATFORM_SERIAL, public_pem


@pytest.fixture
async def world(server_factory: Callable[..., Any]) -> AsyncIterator[World]:
    async with started(server_factory, reconcile_every_s=3600) as w:
        yield w


async def age(w: World, payid: str, seconds: float) -> None:
    """Time passes for one order: it was opened ``seconds`` earlier than it was."""
    async with w.server.services.engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.payid == payid).values(
            created_at=orders.c.created_at - seconds,
            expires_at=orders.c.expires_at - seconds))  # fmt: skip


async def credits(w: World) -> list[str]:
    async with w.server.services.engine.connect() as conn:
        query = select(ledger.c.ref).where(ledger.c.kind == "credit").order_by(ledger.c.ref)
        return list((await conn.execute(query)).scalars())


async def reconcile(w: World) -> dict[str, int]:
    """One round, as the periodic task runs it."""
    return dict(await w.server.services.payments.reconciler.round())


async def test_each_state_wechat_answers_ends_a_waiting_order_its_own_way(world: World) -> None:
    w = world
    paid, notpay, userpaying, closed = [await w.open_order() for _ in range(4)]
    never_opened, notpay_expired = await w.open_order(), await w.open_order()
    transaction = w.fake.pay(paid)
    w.fake.pay(notpay, "NOTPAY")
    w.fake.pay(userpaying, "USERPAYING")
    w.fake.pay(closed, "CLOSED")
    w.fake.pay(notpay_expired, "NOTPAY")
    for payid in (paid, notpay, userpaying, closed):
        await age(w, payid, 601)  # past reconcile_after_s, not yet expired
    for payid in (never_opened, notpay_expired):
        await age(w, payid, 1801)  # past order_ttl_s
    assert await reconcile(w) == {"credited": 1, "waiting": 2, "closed": 1, "expired": 2}
    assert await state(w.server, paid) == ("paid", None)
    assert await state(w.server, notpay) == ("created", None)
    assert await state(w.server, userpaying) == ("created", None)
    assert await state(w.server, closed) == ("closed", "closed by wechat")
    assert await state(w.server, never_opened) == ("closed", "expired")
    assert await state(w.server, notpay_expired) == ("closed", "expired")
    assert await coins(w.server, w.auth) == 300
    assert await credits(w) == [f"pay:wechat:{transaction['transaction_id']}"]
    # Every waiting order was asked about, by out_trade_no and our mchid (the fake checks it)
    asked = [r for r in w.fake.requests if r.startswith("GET /v3/pay/transactions/out-trade-no")]
    assert len(asked) == 6
    # The buyer who was paying pays; the notification is lost again; the next round credits
    w.fake.pay(userpaying)
    assert await reconcile(w) == {"credited": 1, "waiting": 1}
    assert await coins(w.server, w.auth) == 600
    # and the notification arriving at last changes nothing
    late = w.fake.notification(w.fake.transactions[userpaying])
    assert (await w.notify(late)).status_code == 204
    assert await coins(w.server, w.auth) == 600


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"mchid": "1900000999"}, "mchid '1900000999' is not ours"),
        ({"appid": "wx0000000000000000"}, "appid 'wx0000000000000000' is not ours"),
        ({"amount": {"total": 1, "currency": "CNY"}}, "paid 1 fen for an order of 3000 fen"),
        ({"amount": {"total": 3000, "currency": "HKD"}}, "amount.currency 'HKD' is not CNY"),
    ],
    ids=["merchant", "app", "amount", "currency"],
)
async def test_a_success_answer_for_another_merchant_app_amount_or_currency_flags(
    world: World, override: dict[str, Any], why: str
) -> None:
    w = world
    payid = await w.open_order()
    w.fake.pay(payid, **override)
    await age(w, payid, 601)
    assert await reconcile(w) == {"flagged": 1}
    assert await state(w.server, payid) == ("flagged", why)
    assert await coins(w.server, w.auth) == 0
    assert await credits(w) == []
    # flagged is final: neither the next round nor a notification credits it
    assert await reconcile(w) == {}
    assert (await w.notify(w.fake.notification(w.fake.transactions[payid]))).status_code == 204
    assert await coins(w.server, w.auth) == 0


async def test_the_periodic_round_settles_an_order_whose_notification_never_came(
    server_factory: Callable[..., Any],
) -> None:
    async with started(server_factory, reconcile_every_s=0.2) as w:
        payid = await w.open_order()
        w.fake.pay(payid)
        await asyncio.sleep(0.6)  # too young: not asked yet
        assert not any(r.startswith("GET") for r in w.fake.requests)
        await age(w, payid, 601)
        for _ in range(50):
            if await coins(w.server, w.auth) == 300:
                break
            await asyncio.sleep(0.1)
        assert await coins(w.server, w.auth) == 300
        assert await state(w.server, payid) == ("paid", None)


def key_files(tmp: Path, w: World, merchant_pem: str) -> dict[str, str]:
    """WeChat Pay's settings for a separate process, its keys as the files the merchant
    platform gives (``apiclient_key.pem``, ``pub_key.pem``)."""
    (tmp / "apiclient_key.pem").write_text(merchant_pem)
    (tmp / "pub_key.pem").write_text(public_pem(w.fake.key))
    wechat = w.server.settings.payments.wechat
    return {
        "LWORK_PAYMENTS__WECHAT__ENABLED": "true",
        "LWORK_PAYMENTS__WECHAT__APP_ID": wechat.app_id,
        "LWORK_PAYMENTS__WECHAT__MCH_ID": wechat.mch_id,
        "LWORK_PAYMENTS__WECHAT__MERCHANT_SERIAL_NO": wechat.merchant_serial_no,
        "LWORK_PAYMENTS__WECHAT__MERCHANT_PRIVATE_KEY_FILE": str(tmp / "apiclient_key.pem"),
        "LWORK_PAYMENTS__WECHAT__API_V3_KEY": wechat.api_v3_key.get_secret_value(),
        "LWORK_PAYMENTS__WECHAT__PLATFORM_KEY_FILES": json.dumps(
            {PLATFORM_SERIAL: str(tmp / "pub_key.pem")}
        ),
        "LWORK_PAYMENTS__WECHAT__NOTIFY_URL": wechat.notify_url,
        "LWORK_PAYMENTS__WECHAT__API_URL": wechat.api_url,
    }


def cli(
    tmp: Path, db_url: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LWORK_")}
    run_env = {**clean, "LWORK_DATA_DIR": str(tmp), "LWORK_DATABASE__URL": db_url, **env}
    return subprocess.run([sys.executable, "-m", "lwork", *args], env=run_env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


async def test_the_operators_reconcile_command_settles_a_lost_notification(
    world: World, tmp_path: Path, db_url: str
) -> None:
    w = world
    paid, waiting = await w.open_order(), await w.open_order()
    transaction = w.fake.pay(paid)
    w.fake.pay(waiting, "NOTPAY")
    for payid in (paid, waiting):
        await age(w, payid, 601)
    merchant = w.server.settings.payments.wechat.merchant_private_key.get_secret_value()
    env = key_files(tmp_path, w, merchant)
    # A separate process on the same database; the fake answers it from this test's loop
    done = await asyncio.to_thread(cli, tmp_path, db_url, env, "boss", "orders", "reconcile")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"credited": 1, "waiting": 1}
    assert await coins(w.server, w.auth) == 300
    assert await credits(w) == [f"pay:wechat:{transaction['transaction_id']}"]
    again = await asyncio.to_thread(cli, tmp_path, db_url, env, "boss", "orders", "reconcile")
    assert json.loads(again.stdout) == {"waiting": 1}
    assert await coins(w.server, w.auth) == 300


async def paid_order(w: World) -> str:
    payid = await w.open_order()
    assert (await w.notify(w.fake.notification(w.fake.pay(payid)))).status_code == 204
    return payid


async def boss_refund(w: World, payid: str, request_id: str, later: int = 0) -> Any:
    boss = BossClient(w.server.url, "billing", BOSS_SECRET)
    try:
        fields = {"request_id": request_id, "payid": payid, "reason": "buyer asked"}
        r = await boss.send(boss.signed("refund", fields, timestamp=int(time.time()) + later))
    finally:
        await boss.close()
    assert r.status_code == 200, r.text
    return r.json()


async def refund_rows(w: World, payid: str) -> list[Any]:
    async with w.server.services.engine.connect() as conn:
        query = select(refunds).where(refunds.c.payid == payid).order_by(refunds.c.refund_no)
        return list((await conn.execute(query)).all())


async def debits(w: World) -> int:
    async with w.server.services.engine.connect() as conn:
        return len((await conn.execute(select(ledger).where(ledger.c.kind == "refund"))).all())


async def test_a_processing_refund_is_taken_back_once_when_wechat_says_it_succeeded(
    world: World,
) -> None:
    w = world
    payid = await paid_order(w)
    w.fake.refund_status = "PROCESSING"
    answer = await boss_refund(w, payid, "r-1")
    assert (answer["refund_state"], answer["coins_taken"]) == ("pending", 0)
    assert await coins(w.server, w.auth) == 300  # the money has not moved yet
    assert await state(w.server, payid) == ("paid", None)
    # The operator asks again: the same refund, asked under the same number, nothing new
    again = await boss_refund(w, payid, "r-2", later=1)
    assert (again["refund_no"], again["refund_state"]) == (answer["refund_no"], "pending")
    assert len(w.fake.refunds) == 1
    assert {r["out_refund_no"] for r in w.fake.refund_requests} == {answer["refund_no"]}
    notice = w.fake.finish_refund(answer["refund_no"], "SUCCESS")
    assert (await w.notify(notice)).status_code == 204
    assert await coins(w.server, w.auth) == 0
    assert (await state(w.server, payid))[0] == "refunded"
    # WeChat sends it again, with coins bought since: nothing more is taken
    await w.server.services.billing.ledger.credit(PHONE, "credit:more", Balance(coins=50000),
                                                  None, time.time())  # fmt: skip
    assert (await w.notify(notice)).status_code == 204
    assert (await w.notify(w.fake.finish_refund(answer["refund_no"]))).status_code == 204
    assert await coins(w.server, w.auth) == 500
    [row] = await refund_rows(w, payid)
    assert (row.state, row.coins_taken, row.provider_refund_no) == (
        "done", 30000, w.fake.refunds[answer["refund_no"]]["refund_id"])  # fmt: skip
    assert await debits(w) == 1
    # and the operator's refund answers the refund as done
    final = await boss_refund(w, payid, "r-3", later=2)
    assert (final["refund_no"], final["refund_state"], final["coins_taken"]) == (
        answer["refund_no"], "done", 300)  # fmt: skip


async def test_a_refund_whose_answer_was_lost_is_completed_by_wechats_notice(
    world: World,
) -> None:
    w = world
    payid = await paid_order(w)
    w.fake.refund_status, w.fake.lose_refund_answers = "PROCESSING", True
    boss = BossClient(w.server.url, "billing", BOSS_SECRET)
    try:
        fields = {"request_id": "r-1", "payid": payid, "reason": "buyer asked"}
        r = await boss.send(boss.signed("refund", fields, timestamp=int(time.time())))
    finally:
        await boss.close()
    assert r.status_code == 503  # WeChat took it, its answer never came
    [row] = await refund_rows(w, payid)
    assert (row.state, await coins(w.server, w.auth)) == ("asked", 300)
    notice = w.fake.finish_refund(row.refund_no, "SUCCESS")  # the notice comes first
    assert (await w.notify(notice)).status_code == 204
    assert await coins(w.server, w.auth) == 0
    # The operator's retry finds it done: WeChat is not asked again, nothing more taken
    w.fake.lose_refund_answers = False
    asked = len(w.fake.refund_requests)
    answer = await boss_refund(w, payid, "r-1", later=1)
    assert (answer["refund_no"], answer["refund_state"]) == (row.refund_no, "done")
    assert len(w.fake.refund_requests) == asked
    assert await coins(w.server, w.auth) == 0
    assert await debits(w) == 1


@pytest.mark.parametrize("ending", ["SUCCESS", "CLOSED"])
async def test_a_pending_refund_whose_notice_was_lost_is_finished_by_reconciliation(
    world: World, ending: str
) -> None:
    w = world
    payid = await paid_order(w)
    w.fake.refund_status = "PROCESSING"
    answer = await boss_refund(w, payid, "r-1")
    assert await reconcile(w) == {}  # accepted just now: its notice is awaited
    async with w.server.services.engine.begin() as conn:  # time passes
        await conn.execute(update(refunds).values(updated_at=refunds.c.updated_at - 601))
    assert await reconcile(w) == {"refund_pending": 1}  # WeChat still processing
    assert await coins(w.server, w.auth) == 300
    async with w.server.services.engine.begin() as conn:
        await conn.execute(update(refunds).values(updated_at=refunds.c.updated_at - 601))
    w.fake.finish_refund(answer["refund_no"], ending)  # its notice is lost
    outcome = "refund_done" if ending == "SUCCESS" else "refund_failed"
    assert await reconcile(w) == {outcome: 1}
    assert f"GET /v3/refund/domestic/refunds/{answer['refund_no']}" in w.fake.requests
    assert await coins(w.server, w.auth) == (0 if ending == "SUCCESS" else 300)
    [row] = await refund_rows(w, payid)
    assert row.state == ("done" if ending == "SUCCESS" else "failed")
    # the notice coming at last, and the next rounds, change nothing more
    notice = w.fake.finish_refund(answer["refund_no"], ending)
    assert (await w.notify(notice)).status_code == 204
    assert await reconcile(w) == {}
    assert await debits(w) == (1 if ending == "SUCCESS" else 0)


@pytest.mark.parametrize("ending", ["ABNORMAL", "CLOSED"])
async def test_a_refund_that_fails_at_wechat_leaves_the_credit(world: World, ending: str) -> None:
    w = world
    payid = await paid_order(w)
    w.fake.refund_status = "PROCESSING"
    answer = await boss_refund(w, payid, "r-1")
    notice = w.fake.finish_refund(answer["refund_no"], ending)
    for _ in range(2):  # told twice: still nothing taken
        assert (await w.notify(notice)).status_code == 204
    assert await coins(w.server, w.auth) == 300
    assert await state(w.server, payid) == ("paid", None)
    [row] = await refund_rows(w, payid)
    assert (row.state, row.coins_taken) == ("failed", 0)
    assert await debits(w) == 0
    if ending == "ABNORMAL":
        return  # WeChat keeps the money held for the abnormal refund: not refundable anew
    # The operator may refund it again: a new refund, under a new number
    w.fake.refund_status = "SUCCESS"
    second = await boss_refund(w, payid, "r-2", later=1)
    assert second["refund_no"] != answer["refund_no"]
    assert (second["refund_state"], second["coins_taken"]) == ("done", 300)
    assert await coins(w.server, w.auth) == 0
    # A stray success of the first after all takes nothing beyond the whole credit
    await w.server.services.billing.ledger.credit(PHONE, "credit:more", Balance(coins=50000),
                                                  None, time.time())  # fmt: skip
    assert (await w.notify(w.fake.finish_refund(answer["refund_no"]))).status_code == 204
    assert await coins(w.server, w.auth) == 500


async def test_a_second_refund_in_wechats_platform_takes_its_own_share(world: World) -> None:
    w = world
    payid = await paid_order(w)
    transaction = w.fake.transactions[payid]

    def console(number: int, fen: int) -> bytes:
        return w.fake.notification({
            "mchid": MCH_ID, "out_trade_no": payid,
            "transaction_id": transaction["transaction_id"], "out_refund_no": f"console-{number}",
            "refund_id": f"5030000000{number}", "refund_status": "SUCCESS",
            "amount": {"total": 3000, "refund": fen, "payer_total": 3000, "payer_refund": fen},
        }, event="REFUND.SUCCESS")  # fmt: skip

    first, second = console(1, 1000), console(2, 500)
    for body in (first, second, first, second):
        assert (await w.notify(body)).status_code == 204
    assert await coins(w.server, w.auth) == 150  # a third, then a sixth, each once
    too_much = console(3, 2000)  # more than is left of the price: refused, nothing taken
    assert (await w.notify(too_much)).status_code == 204
    assert await coins(w.server, w.auth) == 150
    assert [r.money for r in await refund_rows(w, payid)] == [1000, 500]


async def test_a_wechat_refund_notice_never_touches_another_providers_order(
    server_factory: Callable[..., Any],
) -> None:
    secret = "staging-secret-0123456789"
    async with started(server_factory, test={"enabled": True, "secret": secret}) as w:
        body = {"uuid": PHONE, "device_id": "d", "product_id": "coins_300", "pay_type": "test"}
        payid = (await w.server.post("/lwork/mobile/get_payid", body, headers=w.auth)).json()[
            "payid"
        ]
        paid = json.dumps({"payid": payid, "money": "30.00", "trade_no": "T-test"}).encode()
        mac = hmac.new(secret.encode(), paid, hashlib.sha256).hexdigest()
        r = await w.server.client.post(w.server.url + "/lwork/pay/notify/test", content=paid,
                                       headers={"X-Lwork-Signature": mac})  # fmt: skip
        assert r.text == "success" and await coins(w.server, w.auth) == 300
        notice = w.fake.notification({
            "mchid": MCH_ID, "out_trade_no": payid, "transaction_id": "4200000000000000001",
            "out_refund_no": "console-1", "refund_id": "50300000001", "refund_status": "SUCCESS",
            "amount": {"total": 3000, "refund": 3000, "payer_total": 3000, "payer_refund": 3000},
        }, event="REFUND.SUCCESS")  # fmt: skip
        assert (await w.notify(notice)).status_code == 204  # acknowledged, and logged
        assert await coins(w.server, w.auth) == 300
        assert await state(w.server, payid) == ("paid", None)


async def test_an_oversized_notification_is_413_in_wechats_error_form(world: World) -> None:
    w = world
    limit = w.server.settings.http.body_limit
    body = b'{"id":"' + b"x" * limit + b'"}'
    r = await w.notify(body, w.fake.signed_headers(body))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == "FAIL" and r.json()["message"]
    assert len(w.fake.attempts) == 3  # not acknowledged: WeChat sends it again


@pytest.fixture
def database_down(db_url: str) -> Callable[[], Any]:
    """Stop the test's database from answering, for real: SQLite's file is held by another
    writer (every write waits out busy_timeout, then fails); PostgreSQL refuses connections
    to the database and its sessions are ended. Returns a context manager."""

    @contextlib.asynccontextmanager
    async def down() -> AsyncIterator[None]:
        url = make_url(db_url)
        if url.get_backend_name() == "sqlite":
            holder = sqlite3.connect(str(url.database), timeout=1, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            return
        admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                      database="postgres")  # fmt: skip
        name = url.database
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()

    return down


async def test_a_notification_while_the_database_is_down_is_503_and_credited_once_later(
    world: World, database_down: Callable[[], Any]
) -> None:
    w = world
    payid = await w.open_order()
    paid = w.fake.notification(w.fake.pay(payid))
    async with database_down():
        r = await w.fake.post(w.server.url + NOTIFY, paid, tries=1)
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"code": "FAIL", "message": "temporarily unavailable, send it again"}
    # WeChat sends it again once the database is back: credited, once
    for _ in range(50):  # PostgreSQL's pool finds its connections gone and makes new ones
        r = await w.fake.post(w.server.url + NOTIFY, paid, tries=1)
        if r.status_code == 204:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 204
    assert (await w.notify(paid)).status_code == 204
    assert await coins(w.server, w.auth) == 300
    assert len(await credits(w)) == 1


async def test_a_thousand_concurrent_duplicates_of_one_payment_credit_once(world: World) -> None:
    w = world
    payid = await w.open_order()
    paid = w.fake.notification(w.fake.pay(payid))
    headers = {**w.fake.signed_headers(paid), "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        answers = await asyncio.gather(*(
            client.post(w.server.url + NOTIFY, content=paid, headers=headers)
            for _ in range(1000)
        ))  # fmt: skip
    assert {r.status_code for r in answers} == {204}
    assert await coins(w.server, w.auth) == 300
    assert await credits(w) == [f"pay:wechat:{w.fake.transactions[payid]['transaction_id']}"]
