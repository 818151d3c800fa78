"""Call records, pure parts (fields of CONTRACT §9) and their store on SQLite and PostgreSQL:
opened, heart-beaten in one write, orphans found by lease or by an earlier life of the node,
and closed (so charged) by exactly one closer however many race."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Tariff
from lwork.billing.reservations import ReservationStore
from lwork.calls.records import CallRecord, boss_view, iso, leg_quality, sip_status
from lwork.calls.records_store import RecordStore
from lwork.media.ng.results import CallStats, LegInfo, LegQuality
from lwork.storage.tables import ledger

COINS = Tariff(pays_minutes=False, cents_per_minute=300)
UUID = "13800138000"


def opened(id_: str, answered: float = 1_000.0, node: str = "n1") -> CallRecord:
    return CallRecord(id=id_, account=UUID, kind="out", caller=UUID, callee="02079460000",
                      caller_id="02150001234", started_at=answered - 3, answered_at=answered,
                      ended_at=None, node=node, dialog='{"call_id": "x"}')  # fmt: skip


def test_sip_status_billsec_and_kinds() -> None:
    assert sip_status("hangup_caller", answered=True) == 200
    assert sip_status("sip_486", answered=False) == 486
    assert sip_status("remote_sip_404", answered=False) == 404
    assert sip_status("hangup_caller", answered=False) == 487  # cancelled while ringing
    assert sip_status("trunk_unavailable", answered=False) is None
    record = opened("a")
    assert record.billsec == 0 and record.tariff_kind == "call"
    assert replace(record, ended_at=1_061.9).billsec == 61
    for kind, tariff in [("in", None), ("p2p", None), ("callback_local", "callback")]:
        assert replace(record, kind=kind).tariff_kind == tariff


def test_quality_is_what_the_relay_measured_on_the_leg() -> None:
    quality = LegQuality(ssrc=1, packets_received=95, packets_expected=100, packets_lost=5,
                         jitter_ms=3.0, average_jitter_ms=2.5, interval_loss=0.05, mos=4.12345,
                         rtt_ms=40.0, average_rtt_ms=41.234, remote_jitter_ms=None,
                         remote_loss=None)  # fmt: skip
    leg = LegInfo("callee", "caller", None, None, quality)
    stats = CallStats(created=0, last_signal=0, rtp_packets=0, rtp_bytes=0, rtp_errors=0,
                      rtcp_packets=0, ssrcs={}, legs={"callee": leg})  # fmt: skip
    measured = leg_quality(stats, "callee")
    assert (measured.mos, measured.loss, measured.jitter_ms, measured.rtt_ms) == (
        4.12, 0.05, 2.5, 41.23,
    )  # fmt: skip
    assert leg_quality(stats, "caller").mos is None and leg_quality(None, "callee").mos is None


def test_the_boss_sees_iso_8601_with_the_offset() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert iso(0.0, shanghai) == "1970-01-01T08:00:00+08:00" and iso(None, shanghai) is None
    row = {"id": "n1@@x", "uuid": UUID, "kind": "in", "caller": "442079460000",
           "callee": UUID, "caller_id": None, "started_at": 0.0, "answered_at": None,
           "ended_at": 30.0, "billsec": 0, "minutes": 0, "charge_coins": 0,
           "charge_gift_coins": 0, "charge_minutes": 0, "forgiven": 0,
           "end_reason": "ring_timeout", "sip_status": 480, "mos": None, "loss": None,
           "jitter_ms": None, "rtt_ms": None, "node": "n1"}  # fmt: skip
    view = boss_view(row, shanghai)
    assert (view["account"], view["answer"], view["end"]) == (
        UUID, None, "1970-01-01T08:00:30+08:00",
    )  # fmt: skip
    assert view["charge"] == {"coins": 0, "gift_coins": 0, "minutes": 0, "forgiven": 0}


async def test_heartbeats_and_orphans(engine: AsyncEngine) -> None:
    ledger_store = LedgerStore(engine)
    store = RecordStore(engine, ledger_store)
    reservations = ReservationStore(engine, ledger_store)
    await ledger_store.credit(UUID, "credit:1", Balance(coins=3000), None, 1.0)
    await store.open(opened("live", node="n2"), "n2/now", 1_000.0)
    await store.open(opened("dead", node="n3"), "n3/old", 1_000.0)
    await store.open(opened("mine-before", node="n1"), "n1/before", 1_000.0)
    assert await reservations.hold("dead", UUID, COINS, 1, 5, "n3/old", 1_000.0) is None
    assert await reservations.hold("live", UUID, COINS, 1, 5, "n2/now", 1_000.0) is None
    await store.heartbeat("n2/now", 1_050.0)  # one write for all of n2's records
    # n1's new life at 1_061: n3 is past a 60 s lease, n2 is not, n1's earlier life always is
    orphans = await store.orphans("n1/now", "n1", 60.0, 1_061.0)
    assert sorted((o.id, o.ended_at, o.end_reason) for o in orphans) == [
        ("dead", 1_000.0, "node_lost"), ("mine-before", 1_000.0, "node_lost"),
    ]  # fmt: skip
    assert set(await reservations.held(UUID)) == {"live"}  # the dead node's reservation went
    assert await store.orphans("n2/now", "n2", 60.0, 1_049.0) == []  # within the lease


async def test_racing_closers_close_and_charge_once(engine: AsyncEngine) -> None:
    ledger_store = LedgerStore(engine)
    await ledger_store.credit(UUID, "credit:1", Balance(coins=3000), None, 1.0)
    stores = [RecordStore(engine, ledger_store) for _ in range(4)]
    await stores[0].open(opened("race"), "n9/old", 1_000.0)
    closing = replace(opened("race"), ended_at=1_090.0, end_reason="node_lost")
    charges = await asyncio.gather(*(store.close(closing, COINS, 2_000.0) for store in stores))
    assert sum(c is not None for c in charges) == 1
    assert await ledger_store.balance(UUID, 10_000.0) == Balance(coins=2400)  # two minutes, once
    async with engine.connect() as conn:
        refs = await conn.scalar(select(func.count()).where(ledger.c.ref == "cdr:race"))
    assert refs == 1
    [row] = await stores[0].rows(UUID, 0.0, 1e12)
    assert (row["ended_at"], row["billsec"], row["minutes"], row["dialog"]) == (
        1_090.0,
        90,
        2,
        None,
    )
