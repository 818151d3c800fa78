"""Alipay refunds nobody answered are still decided (issue #14, CONTRACT §8), through real HTTP:
the fake Alipay gateway on a loopback socket makes a refund and loses its answer, and answers
``alipay.trade.fastpay.refund.query`` as documented; reconciliation asks it about our refunds
still undecided after ``payments.reconcile_after_s``. A console refund's notice that came
while ours was undecided, and that Alipay then stopped sending, is taken back once ours is."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from test_alipay import coins, state
from test_alipay_reconcile_refund import (
    World,
    paid_order,
    refund_debits,
    refund_rows,
    world,
)

from lwork.storage.tables import refund_holds, refunds

__all__ = ["world"]  # the fixture, used by name

QUERY = "alipay.trade.fastpay.refund.query"


async def age_refunds(w: World, payid: str, seconds: float = 601) -> None:
    """Time passes for the order's refunds: last changed ``seconds`` earlier than they were."""
    async with w.server.services.engine.begin() as conn:
        await conn.execute(update(refunds).where(refunds.c.payid == payid).values(
            updated_at=refunds.c.updated_at - seconds))  # fmt: skip


async def lost_refund(w: World, payid: str, made: bool, **extra: Any) -> None:
    """The operator's refund of ``payid``, whose answer never comes back: Alipay made it
    (``made``) or never got the request."""
    if made:
        w.gateway.lose_refund_answers = True
    else:
        w.gateway.http_status = 504
    r = await w.refund(payid, **extra)
    assert (r.status_code, r.json()["reason"]) == (503, "service_not_available")
    w.gateway.lose_refund_answers, w.gateway.http_status = False, 200


async def holds(w: World) -> int:
    async with w.server.services.engine.connect() as conn:
        return len((await conn.execute(select(refund_holds))).all())


@pytest.mark.parametrize("trouble", ["system_error", "http_500", "forged_reply"])
async def test_a_refund_whose_answer_was_lost_is_taken_back_once_by_reconciliation(
    world: World, trouble: str
) -> None:
    w = world
    payid = await paid_order(w)
    await lost_refund(w, payid, made=True)
    assert w.gateway.refunded_fen(payid) == 3000 and await coins(w.server, w.auth) == 300
    assert await w.reconcile() == {}  # too young: its answer may still be on its way
    assert QUERY not in w.gateway.calls
    await age_refunds(w, payid)
    # Alipay busy, or a reply that does not verify: asked again next round, nothing decided
    w.gateway.system_error = trouble == "system_error"
    w.gateway.http_status = 500 if trouble == "http_500" else 200
    w.gateway.forge_replies = trouble == "forged_reply"
    assert await w.reconcile() == {"refund_unavailable": 1}
    assert await refund_rows(w, payid) == [(3000, "asked", 0, 0)]
    assert await coins(w.server, w.auth) == 300
    w.gateway.system_error, w.gateway.http_status, w.gateway.forge_replies = False, 200, False
    assert await w.reconcile() == {"refund_done": 1}
    assert await coins(w.server, w.auth) == 0
    assert (await state(w.server, payid))[0] == "refunded"
    assert await refund_rows(w, payid) == [(3000, "done", 30000, 0)]
    # Later rounds, the operator's retry and Alipay's late notice of it: nothing more
    assert await w.reconcile() == {}
    retried = await w.refund(payid, later=1)
    assert (retried.status_code, retried.json()["refund_no"]) == (200, f"{payid}R1")
    assert w.gateway.calls.count("alipay.trade.refund") == 1
    assert await w.notify(w.gateway.refund_notification(payid, f"{payid}R1")) == "success"
    assert await coins(w.server, w.auth) == 0
    assert await refund_debits(w) == [(-30000, 0)]


async def test_a_refund_alipay_never_received_is_failed_and_the_credit_kept(
    world: World,
) -> None:
    w = world
    payid = await paid_order(w)
    await lost_refund(w, payid, made=False)
    await age_refunds(w, payid)
    assert await w.reconcile() == {"refund_failed": 1}
    assert w.gateway.calls.count(QUERY) == 1
    assert await refund_rows(w, payid) == [(3000, "failed", 0, 0)]
    assert await state(w.server, payid) == ("paid", None)
    assert await coins(w.server, w.auth) == 300 and w.gateway.refunded_fen(payid) == 0
    assert await w.reconcile() == {}  # decided: not asked about again
    assert w.gateway.calls.count(QUERY) == 1
    # The operator asks again: a new refund under a new number, done once
    r = await w.refund(payid, later=1)
    assert (r.status_code, r.json()["refund_no"], r.json()["refund_state"]) == (
        200, f"{payid}R2", "done")  # fmt: skip
    assert await coins(w.server, w.auth) == 0 and w.gateway.refunded_fen(payid) == 3000


@pytest.mark.parametrize("decided_by", ["reconciliation", "retry", "its_notice"])
async def test_a_console_refund_refused_while_ours_was_undecided_is_taken_back_once(
    world: World, decided_by: str
) -> None:
    """Ours (10.00) is made and its answer lost; 5.00 is refunded in the console, whose notice
    (15.00 refunded in all) is refused while ours is undecided, and Alipay never sends it
    again. Once ours is decided (by reconciliation, the operator's retry, or its own notice),
    the console's 5.00 is taken back too: 150 coins left, not 200 nor 100."""
    w = world
    payid = await paid_order(w)
    await lost_refund(w, payid, made=True, money=10.0)
    console = w.gateway.console_refund(payid, "5.00")
    r = await w.alipay.post(w.server.url + "/lwork/pay/notify/alipay", console, tries=1)
    assert (r.status_code, r.text) == (409, "failure")  # ... and Alipay gives up
    assert await coins(w.server, w.auth) == 300
    if decided_by == "reconciliation":
        await age_refunds(w, payid)
        assert await w.reconcile() == {"refund_done": 1}
    elif decided_by == "retry":
        retried = await w.refund(payid, money=10.0, later=1)
        assert (retried.status_code, retried.json()["coins_taken"]) == (200, 100)
    else:
        ours = w.gateway.refund_notification(payid, f"{payid}R1")
        assert await w.notify(ours) == "success"
    assert await coins(w.server, w.auth) == 150
    assert await refund_rows(w, payid) == [(1000, "done", 10000, 0), (500, "done", 5000, 0)]
    assert await holds(w) == 0
    # More rounds, and every notice again (late duplicates): nothing more
    await age_refunds(w, payid)
    assert await w.reconcile() == {}
    assert await w.notify(console) == "success"
    assert await w.notify(w.gateway.refund_notification(payid, f"{payid}R1")) == "success"
    assert await coins(w.server, w.auth) == 150
    assert await refund_debits(w) == [(-10000, 0), (-5000, 0)]
    assert w.gateway.calls.count("alipay.trade.refund") == (2 if decided_by == "retry" else 1)


async def test_a_console_refund_held_while_ours_never_reached_alipay_takes_its_share(
    world: World,
) -> None:
    """Ours never reached Alipay, so the console's notice says 5.00 refunded in all; refused
    while ours is undecided. Reconciliation finds ours unknown: failed, its 10.00 of credit
    kept, and the console's 5.00 taken back."""
    w = world
    payid = await paid_order(w)
    await lost_refund(w, payid, made=False, money=10.0)
    console = w.gateway.console_refund(payid, "5.00")
    assert console["refund_fee"] == "5.00"
    r = await w.alipay.post(w.server.url + "/lwork/pay/notify/alipay", console, tries=1)
    assert (r.status_code, r.text) == (409, "failure")
    await age_refunds(w, payid)
    assert await w.reconcile() == {"refund_failed": 1}
    assert await coins(w.server, w.auth) == 250
    assert await refund_rows(w, payid) == [(1000, "failed", 0, 0), (500, "done", 5000, 0)]
    assert await w.reconcile() == {}
    assert await w.notify(console) == "success"
    assert await coins(w.server, w.auth) == 250
    assert await holds(w) == 0


async def test_migration_0017_adds_and_drops_only_the_holds(db_url: str) -> None:
    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine

    from lwork.storage.engine import migrate, to_revision

    def tables(conn: Any) -> set[str]:
        return set(inspect(conn).get_table_names())

    engine = create_async_engine(db_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            assert {"refund_holds", "refunds"} <= await conn.run_sync(tables)
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0016", down=True))
        async with engine.connect() as conn:
            left = await conn.run_sync(tables)
        assert "refund_holds" not in left and "refunds" in left
        await migrate(engine)
        async with engine.connect() as conn:
            assert "refund_holds" in await conn.run_sync(tables)
    finally:
        await engine.dispose()
