"""The fraud store on SQLite and PostgreSQL: overrides, alarms as blocks, spending records."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Tariff
from lwork.calls.records import CallRecord
from lwork.calls.records_store import RecordStore
from lwork.fraud.limits import Override
from lwork.fraud.store import ACCOUNT, PREFIX, Alarm, FraudStore

UUID = "13800138000"


async def test_an_override_is_written_replaced_and_cleared(engine: AsyncEngine) -> None:
    store = FraudStore(engine)
    assert await store.override(UUID) is None
    first = Override(daily_cap=500, allow_prefixes=("+852",), callback_local=("13900000002",))
    await store.set_override(UUID, first, 1.0)
    assert await store.override(UUID) == first
    await store.set_override(UUID, Override(deny_prefixes=("+86168",)), 2.0)
    assert await store.override(UUID) == Override(deny_prefixes=("+86168",))
    assert await store.clear_override(UUID) and not await store.clear_override(UUID)
    assert await store.override(UUID) is None


async def test_alarms_block_until_they_expire_or_are_lifted(engine: AsyncEngine) -> None:
    store = FraudStore(engine)
    await store.raise_alarm(Alarm(ACCOUNT, UUID, "11 calls in 60 s", "n1", 100.0, 1_000.0))
    await store.raise_alarm(Alarm(PREFIX, "+8821612", "31 calls", "n2", 110.0, 200.0))
    assert await store.blocked([UUID, "+8821612", "+8613800"], 150.0) == {UUID, "+8821612"}
    assert await store.blocked([UUID, "+8821612"], 500.0) == {UUID}
    assert [a.subject for a in await store.alarms(0.0, 500.0, active_only=False)] == [
        UUID, "+8821612"
    ]  # fmt: skip
    assert [a.node for a in await store.alarms(0.0, 500.0, active_only=True)] == ["n1"]
    assert await store.unblock(UUID, 600.0) == 1
    assert await store.blocked([UUID], 600.0) == set()
    assert await store.unblock(UUID, 600.0) == 0


def out_leg(
    id_: str, started: float, answered: float | None, ended: float, reason: str
) -> CallRecord:
    return CallRecord(id=id_, account=UUID, kind="out", caller=UUID, callee="02079460000",
                      caller_id=UUID, started_at=started, answered_at=answered, ended_at=ended,
                      end_reason=reason)  # fmt: skip


async def test_spending_reads_the_call_records_that_ran_lately(engine: AsyncEngine) -> None:
    records = RecordStore(engine, LedgerStore(engine))
    tariff = Tariff(pays_minutes=False, cents_per_minute=300)
    for n, (answered, ended) in enumerate(((0.0, 50.0), (900.0, 960.0), (990.0, 1_010.0))):
        record = out_leg(f"n1@@{n}", answered, answered, ended, "hangup_caller")
        await records.close(record, tariff, ended)
    # a leg never answered (it left a record too) is no spending
    await records.close(out_leg("n1@@9", 995.0, None, 1_000.0, "sip_486"), tariff, 1_000.0)
    assert sorted(s.ended_at for s in await FraudStore(engine).spending(UUID, 940.0)) == [
        960.0, 1_010.0
    ]  # fmt: skip
    assert await FraudStore(engine).spending("13900000002", 0.0) == []
