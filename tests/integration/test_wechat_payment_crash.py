"""A real ``lwork serve`` with WeChat Pay, killed (``kill -9``) while it settles a burst of
signed and encrypted WeChat Pay notifications, then started again: WeChat sends again every
notification it did not see acknowledged, and each paid order is credited exactly once, on
SQLite and PostgreSQL (CONTRACT §8). The server reads its WeChat keys from files, as an
operator deploys them."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select
from test_boss_cli import lwork
from test_records_crash import Node

from lwork.storage.engine import create_engine
from lwork.storage.tables import balances, ledger, orders

from fakes.servers import free_port
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

ACCOUNT = "13800138000"
NOTIFY = "/lwork/pay/notify/wechat"
KILL_AFTER_S = [0.0, 0.01, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.1]
"""How long after a burst went out each server dies: before it read the requests, while it
verifies and settles them, after it answered; so both sides of the commit are hit (here: no
order paid up to 25 ms, one paid and none acknowledged at 30 ms, all answered from 55 ms)."""
BURST = 4
"""Orders paid in each burst, each notification sent twice at once."""


def wechat_env(tmp: Path, fake: FakeWechatPay, merchant_pem: str, db_url: str) -> dict[str, str]:
    (tmp / "apiclient_key.pem").write_text(merchant_pem)
    (tmp / "pub_key.pem").write_text(public_pem(fake.key))
    return {
        "LWORK_DATABASE__URL": db_url,
        "LWORK_BILLING__SIGNUP_GIFT_COINS": "0",
        "LWORK_PAYMENTS__WECHAT__ENABLED": "true",
        "LWORK_PAYMENTS__WECHAT__APP_ID": APP_ID,
        "LWORK_PAYMENTS__WECHAT__MCH_ID": MCH_ID,
        "LWORK_PAYMENTS__WECHAT__MERCHANT_SERIAL_NO": MERCHANT_SERIAL,
        "LWORK_PAYMENTS__WECHAT__MERCHANT_PRIVATE_KEY_FILE": str(tmp / "apiclient_key.pem"),
        "LWORK_PAYMENTS__WECHAT__API_V3_KEY": fake.api_v3_key.decode(),
        "LWORK_PAYMENTS__WECHAT__PLATFORM_KEY_FILES": json.dumps(
            {PLATFORM_SERIAL: str(tmp / "pub_key.pem")}
        ),
        "LWORK_PAYMENTS__WECHAT__NOTIFY_URL": "https://pay.example.com" + NOTIFY,
        # Nothing listens there: these orders are young, no reconciliation asks about them.
        "LWORK_PAYMENTS__WECHAT__API_URL": f"http://127.0.0.1:{free_port()}",
    }


async def seed(db_url: str, payids: list[str]) -> None:
    """Open WeChat orders of 30 coins (3,000 fen), as ``get_payid`` would leave them."""
    engine = create_engine(db_url, 1)
    now = time.time()
    async with engine.begin() as conn:
        for payid in payids:
            await conn.execute(orders.insert().values(
                payid=payid, uuid=ACCOUNT, uuid_raw=ACCOUNT, product_id="coins_300",
                pay_type="wechat", money=3000, coins=30000, minutes=0, state="created",
                created_at=now, expires_at=now + 3600, updated_at=now))  # fmt: skip
    await engine.dispose()


async def post(client: httpx.AsyncClient, node: Node, fake: FakeWechatPay, body: bytes) -> int:
    """One delivery, signed now, as WeChat sends it; 0 when the connection died."""
    headers = {**fake.signed_headers(body), "Content-Type": "application/json"}
    try:
        r = await client.post(node.url + NOTIFY, content=body, headers=headers)
    except httpx.TransportError:
        return 0
    return r.status_code


async def test_a_burst_cut_off_by_kill_9_credits_each_order_once_when_resent(
    tmp_path: Path, db_url: str
) -> None:
    merchant = new_key()
    fake = FakeWechatPay(merchant.public_key(), secrets.token_hex(16).encode())
    env = wechat_env(tmp_path, fake, private_pem(merchant), db_url)
    (tmp_path / "node").mkdir()
    opened = lwork(tmp_path / "node", "boss", "open", ACCOUNT, "pw", env=env)  # migrates
    assert opened.returncode == 0, opened.stderr
    payids = [f"WxCrash{n:015d}" for n in range(len(KILL_AFTER_S) * BURST)]
    await seed(db_url, payids)
    for payid in payids:
        fake.orders[payid] = {"amount": {"total": 3000, "currency": "CNY"}}
    bodies = {payid: fake.notification(fake.pay(payid)) for payid in payids}
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        for n, delay in enumerate(KILL_AFTER_S):
            burst = payids[n * BURST : (n + 1) * BURST]
            node = Node("node", tmp_path, env)
            try:
                await node.ready(client)
                sent = asyncio.gather(*(post(client, node, fake, bodies[p])
                                        for p in burst for _ in range(2)))  # fmt: skip
                await asyncio.sleep(delay)
                node.kill()
                await sent  # answered, or cut off
            finally:
                node.kill()
            # WeChat sends again what it did not see acknowledged, to the next life; and
            # WeChat's duplicates after the acknowledgement change nothing
            node = Node("node", tmp_path, env)
            try:
                await node.ready(client)
                for payid in burst:
                    for _ in range(2):
                        assert await post(client, node, fake, bodies[payid]) == 204, node.log()
            finally:
                node.stop()
    engine = create_engine(db_url, 1)
    try:
        async with engine.connect() as conn:
            credited = (await conn.execute(
                select(ledger.c.ref, func.count()).where(ledger.c.ref.like("pay:wechat:%"))
                .group_by(ledger.c.ref))).all()  # fmt: skip
            coins = await conn.scalar(select(balances.c.coins).where(balances.c.uuid == ACCOUNT))
            states = set((await conn.execute(
                select(orders.c.state).where(orders.c.payid.in_(payids)))).scalars())  # fmt: skip
    finally:
        await engine.dispose()
    expected = sorted((f"pay:wechat:{fake.transactions[p]['transaction_id']}", 1) for p in payids)
    assert sorted(credited) == expected
    assert coins == 30000 * len(payids)
    assert states == {"paid"}
