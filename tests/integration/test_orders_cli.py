"""``lwork boss orders list|reconcile|refund`` as real processes on a fresh database, with the
``test`` provider (its refunds are done at once; it never knows of an order it was not told)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import select
from test_boss_cli import lwork

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance
from lwork.storage.engine import create_engine
from lwork.storage.tables import minute_buckets, orders

TEST_PAY = {"LWORK_PAYMENTS__TEST__ENABLED": "true",
            "LWORK_PAYMENTS__TEST__SECRET": "test-secret-0123456789"}  # fmt: skip
ACCOUNT = "02100001111"


async def seed(tmp_path: Path) -> None:
    """A paid 100-minute order (credited as a paid notification would), and an unpaid one
    past its expiry."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}", 1)
    now = time.time()
    row = {"uuid": ACCOUNT, "uuid_raw": ACCOUNT, "product_id": "minutes_100x1",
           "pay_type": "test", "money": 2000, "coins": 0, "minutes": 100,
           "created_at": now - 4000, "updated_at": now}  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(orders.insert().values(payid="PaidOrder000000000001", state="paid",
                                                  trade_no="T1", paid_at=now - 3900,
                                                  expires_at=now - 2200, **row))  # fmt: skip
        await conn.execute(orders.insert().values(payid="OpenOrder000000000001", state="created",
                                                  expires_at=now - 2200, **row))  # fmt: skip
    await LedgerStore(engine).credit(ACCOUNT, "pay:test:T1", Balance(minutes=100), None, now)
    await engine.dispose()


async def test_reconcile_list_and_refund_from_the_command_line(tmp_path: Path) -> None:
    assert lwork(tmp_path, "boss", "open", ACCOUNT, "boss-pw").returncode == 0  # migrates
    await seed(tmp_path)
    done = lwork(tmp_path, "boss", "orders", "reconcile", env=TEST_PAY)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"expired": 1}
    # Spend 40 of the 100 minutes: the refund takes back 60 and records 40 short
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}", 1)
    async with engine.begin() as conn:
        await conn.execute(minute_buckets.update().values(minutes_left=60))
    await engine.dispose()
    refund = lwork(tmp_path, "boss", "orders", "refund", "PaidOrder000000000001",
                   "--reason", "buyer asked", env=TEST_PAY)  # fmt: skip
    assert refund.returncode == 0, refund.stderr
    answer = json.loads(refund.stdout)
    assert (answer["minutes_taken"], answer["minutes_short"]) == (60, 40)
    assert lwork(tmp_path, "boss", "balance", ACCOUNT).stdout.strip() == (
        f"{ACCOUNT} (dth): 0 package minutes usable now\n  no packages"
    )
    again = lwork(tmp_path, "boss", "orders", "refund", "PaidOrder000000000001", env=TEST_PAY)
    assert json.loads(again.stdout) == answer  # nothing twice
    listed = lwork(tmp_path, "boss", "orders", "list", "--start", "2000-01-01",
                   "--end", "2100-01-01", "--account", ACCOUNT)  # fmt: skip
    states = {o["payid"]: o["state"] for o in map(json.loads, listed.stdout.splitlines())}
    assert states == {"PaidOrder000000000001": "refunded", "OpenOrder000000000001": "closed"}
    unknown = lwork(tmp_path, "boss", "orders", "refund", "NoSuch", env=TEST_PAY)
    assert unknown.returncode == 1 and "unknown_payid" in unknown.stderr
    unpaid = lwork(tmp_path, "boss", "orders", "refund", "OpenOrder000000000001", env=TEST_PAY)
    assert unpaid.returncode == 1 and "not_paid" in unpaid.stderr
    audit = lwork(tmp_path, "boss", "audit").stdout
    assert "orders" in audit
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}", 1)
    async with engine.connect() as conn:
        note = await conn.scalar(select(orders.c.note).where(orders.c.payid.like("Paid%")))
    await engine.dispose()
    assert note == "refunded 2000 fen: buyer asked"
