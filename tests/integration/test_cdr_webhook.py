"""The CDR webhook (CONTRACT §9): every closed record reaches the BOSS at least once, in order
per account, through failures, outages and restarts, signed as BOSS requests are; a hanging
BOSS holds up no call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select

from lwork.calls.records import CallRecord
from lwork.storage.tables import cdr_outbox

from conftest import LiveServer
from fakes.rtp_peer import eventually
from fakes.servers import free_port
from fakes.webhook_receiver import WebhookReceiver, webhook_receiver

KEY_ID, SECRET = "billing", "webhook-secret-0123456789"
ACCOUNTS = [f"1380013{n:04d}" for n in range(5)]


def boss(url: str, batch: int = 1000) -> dict[str, Any]:
    return {"boss": {"keys": {KEY_ID: [SECRET]}, "cdr_webhook_url": url,
                     "cdr_webhook_backoff_s": 0.05, "cdr_webhook_backoff_max_s": 0.2,
                     "cdr_webhook_batch": batch}}  # fmt: skip


def record(n: int, account: str) -> CallRecord:
    now = time.time()
    return CallRecord(id=f"hook-{account}-{n:03d}", account=account, kind="p2p", caller=account,
                      callee="13900000002", caller_id=account, started_at=now - 30,
                      answered_at=now - 20, ended_at=now, end_reason="hangup_caller")  # fmt: skip


async def close_all(server: LiveServer, per_account: int) -> list[str]:
    """Each account's records closed one after another, the accounts side by side."""
    records = server.services.records
    assert records is not None

    async def account_calls(account: str) -> None:
        for n in range(per_account):
            await records.close(record(n, account), None, time.time())

    await asyncio.gather(*(account_calls(a) for a in ACCOUNTS))
    return [record(n, a).id for a in ACCOUNTS for n in range(per_account)]


async def outbox_depth(server: LiveServer) -> int:
    async with server.services.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(cdr_outbox)) or 0)


async def drained(server: LiveServer) -> bool:
    """The outbox empties (a row goes once its delivery's answer is back)."""
    for _ in range(500):
        if await outbox_depth(server) == 0:
            return True
        await asyncio.sleep(0.02)
    return False


def in_account_order(receiver: WebhookReceiver) -> None:
    """Each account's records first arrived in the order they were closed."""
    for account in ACCOUNTS:
        firsts = list(dict.fromkeys(i for i in receiver.ids() if f"-{account}-" in i))
        assert firsts == sorted(firsts), firsts


async def test_a_boss_failing_a_third_of_the_time_gets_every_record(server_factory) -> None:  # type: ignore[no-untyped-def]
    receiver = WebhookReceiver(KEY_ID, SECRET, fail=lambda n: n % 3 == 1)
    async with webhook_receiver(receiver), server_factory(**boss(receiver.url)) as server:
        closed = await close_all(server, 12)
        assert await eventually(lambda: set(receiver.ids()) == set(closed), 30), (
            len(set(receiver.ids())), receiver.refused)  # fmt: skip
        assert receiver.refused > 0 and receiver.bad_signatures == 0
        in_account_order(receiver)
        assert await drained(server)
        record_seen = next(r for r in receiver.received if r["id"] == closed[0])
        assert (record_seen["account"], record_seen["kind"]) == (ACCOUNTS[0], "p2p")
        assert record_seen["billsec"] == 20 and record_seen["end_reason"] == "hangup_caller"


async def test_a_boss_away_for_a_while_gets_everything_when_it_is_back(server_factory) -> None:  # type: ignore[no-untyped-def]
    down = True
    receiver = WebhookReceiver(KEY_ID, SECRET, fail=lambda n: down)
    async with webhook_receiver(receiver), server_factory(**boss(receiver.url)) as server:
        closed = await close_all(server, 4)
        assert await eventually(lambda: receiver.refused >= 10, 10)
        assert receiver.received == [] and await outbox_depth(server) == len(closed)

        async def depth_metric() -> tuple[int, float]:  # counted at most once a second
            metrics = (await server.get("/metrics")).json()
            return metrics["cdr_outbox_depth"], metrics["cdr_outbox_oldest_s"]

        for _ in range(40):
            depth, oldest = await depth_metric()
            if depth == len(closed):
                break
            await asyncio.sleep(0.1)
        assert depth == len(closed) and oldest > 0
        down = False
        assert await eventually(lambda: set(receiver.ids()) == set(closed), 30)
        in_account_order(receiver)


async def test_an_account_held_back_hides_no_other_accounts_record(server_factory) -> None:  # type: ignore[no-untyped-def]
    """An account whose records the BOSS keeps refusing holds back only its own: with more of
    its records waiting than a round reads, another account's record still goes out."""
    held, other = ACCOUNTS[0], ACCOUNTS[1]
    receiver = WebhookReceiver(KEY_ID, SECRET, fail_record=lambda r: r["account"] == held)
    async with webhook_receiver(receiver), server_factory(**boss(receiver.url, batch=5)) as server:
        records = server.services.records
        assert records is not None
        for n in range(12):
            await records.close(record(n, held), None, time.time())
        assert await eventually(lambda: receiver.refused >= 3, 10)
        await records.close(record(0, other), None, time.time())
        assert await eventually(lambda: receiver.ids() == [record(0, other).id], 10), (
            receiver.ids(), receiver.refused)  # fmt: skip
        for _ in range(100):  # its row goes once the BOSS's answer is back
            if await outbox_depth(server) == 12:
                break
            await asyncio.sleep(0.02)
        assert await outbox_depth(server) == 12


async def test_records_left_in_the_outbox_go_out_after_a_restart(server_factory) -> None:  # type: ignore[no-untyped-def]
    nowhere = f"http://127.0.0.1:{free_port()}/boss/cdrs"  # nothing listens there
    async with server_factory(**boss(nowhere)) as server:
        closed = await close_all(server, 2)
        assert await outbox_depth(server) == len(closed)
    receiver = WebhookReceiver(KEY_ID, SECRET)
    async with webhook_receiver(receiver), server_factory(**boss(receiver.url)):
        assert await eventually(lambda: sorted(receiver.ids()) == sorted(closed), 30)


async def test_a_hanging_boss_holds_up_no_call(server_factory) -> None:  # type: ignore[no-untyped-def]
    receiver = WebhookReceiver(KEY_ID, SECRET, hang_s=3.0)
    async with webhook_receiver(receiver), server_factory(**boss(receiver.url)) as server:
        closed = await close_all(server, 3)  # every close returns while the BOSS hangs
        assert receiver.received == []
        assert await outbox_depth(server) == len(closed)
        assert await eventually(lambda: set(receiver.ids()) == set(closed), 30)


async def test_without_a_webhook_no_outbox_is_kept(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory() as server:
        await close_all(server, 2)
        assert await outbox_depth(server) == 0
