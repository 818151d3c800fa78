"""A server killed (``kill -9`` of a real ``lwork serve``) while it settles a payment notification
credits the order exactly once after the provider sends the notification again, whether the kill
came before the credit's commit or between the commit and the acknowledgement (CONTRACT §8)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select
from test_boss_cli import lwork
from test_records_crash import Node

from lwork.storage.engine import create_engine
from lwork.storage.tables import balances, ledger, orders

ACCOUNT = "13800138000"
SECRET = "test-secret-0123456789"
TEST_PAY = {"LWORK_PAYMENTS__TEST__ENABLED": "true", "LWORK_PAYMENTS__TEST__SECRET": SECRET,
            "LWORK_DATABASE__URL": ""}  # fmt: skip
KILL_AFTER_S = [0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.1, 0.3]
"""How long after the notification went out each server dies: from before it read the request
to after it answered, so both sides of the commit are hit across the runs (here: the order was
still ``created`` after the kills up to 5 ms, ``paid`` from 10 ms)."""


async def seed(db: Path, count: int) -> None:
    """``count`` open orders of 30 coins (3,000 fen), as ``get_payid`` would leave them."""
    engine = create_engine(f"sqlite+aiosqlite:///{db}", 1)
    now = time.time()
    async with engine.begin() as conn:
        for n in range(count):
            await conn.execute(orders.insert().values(
                payid=f"CrashOrder{n:012d}", uuid=ACCOUNT, uuid_raw=ACCOUNT,
                product_id="coins_300", pay_type="test", money=3000, coins=30000, minutes=0,
                state="created", created_at=now, expires_at=now + 3600,
                updated_at=now))  # fmt: skip
    await engine.dispose()


def notification(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"payid": f"CrashOrder{n:012d}", "money": "30.00", "trade_no": f"T-{n}"})
    mac = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return body.encode(), {"X-Lwork-Signature": mac, "Content-Type": "application/json"}


async def test_a_notification_cut_off_by_a_crash_credits_once_when_retried(tmp_path: Path) -> None:
    # "node" is the data directory every life of the server shares
    (tmp_path / "node").mkdir()
    assert lwork(tmp_path / "node", "boss", "open", ACCOUNT, "pw").returncode == 0
    await seed(tmp_path / "node" / "lwork.db", len(KILL_AFTER_S))
    async with httpx.AsyncClient(timeout=10) as client:
        for n, delay in enumerate(KILL_AFTER_S):
            body, headers = notification(n)
            node = Node("node", tmp_path, TEST_PAY)
            try:
                await node.ready(client)
                sent = asyncio.ensure_future(
                    client.post(node.url + "/lwork/pay/notify/test", content=body, headers=headers)
                )
                await asyncio.sleep(delay)
                node.kill()
                await asyncio.gather(sent, return_exceptions=True)  # answered or cut off
            finally:
                node.kill()
            # the provider retries until it hears "success", from the next life of the server
            node = Node("node", tmp_path, TEST_PAY)
            try:
                await node.ready(client)
                for _ in range(2):  # and a duplicate after the acknowledgement changes nothing
                    r = await client.post(
                        node.url + "/lwork/pay/notify/test", content=body, headers=headers
                    )
                    assert (r.status_code, r.text) == (200, "success"), node.log()
            finally:
                node.stop()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'node' / 'lwork.db'}", 1)
    try:
        async with engine.connect() as conn:
            credits = (await conn.execute(
                select(ledger.c.ref, func.count()).where(ledger.c.ref.like("pay:test:%"))
                .group_by(ledger.c.ref))).all()  # fmt: skip
            coins = await conn.scalar(select(balances.c.coins).where(balances.c.uuid == ACCOUNT))
            states = set((await conn.execute(select(orders.c.state))).scalars())
    finally:
        await engine.dispose()
    assert sorted(credits) == sorted((f"pay:test:T-{n}", 1) for n in range(len(KILL_AFTER_S)))
    assert coins == 30000 * len(KILL_AFTER_S)
    assert states == {"paid"}
