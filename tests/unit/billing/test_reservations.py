"""Reservations of live paid calls (CONTRACT §8) on SQLite and PostgreSQL: parallel calls on one
balance never spend more than it holds, and an account has at most its allowed paid calls."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Reserved, Tariff
from lwork.billing.reservations import Refusal, ReservationStore, TalkGrant
from lwork.calls.bridge import CAP_MARGIN_S
from lwork.calls.records import CallRecord
from lwork.calls.records_store import RecordStore

COINS = Tariff(pays_minutes=False, cents_per_minute=300)
MINUTES = Tariff(pays_minutes=True)
OWNER = "n1/test"
GRANT = 2
"""Minutes a grant adds in the property test (``billing.grant_minutes``)."""
_accounts = itertools.count()


def record(id_: str, uuid: str, answered: float | None, ended: float) -> CallRecord:
    return CallRecord(id=id_, account=uuid, kind="out", caller=uuid, callee="02079460000",
                      caller_id=uuid, started_at=(answered or ended) - 1, answered_at=answered,
                      ended_at=ended, end_reason="hangup_caller")  # fmt: skip


async def test_a_second_call_cannot_start_on_coins_the_first_may_spend(
    engine: AsyncEngine,
) -> None:
    ledger = LedgerStore(engine)
    store = ReservationStore(engine, ledger)
    await ledger.credit("u1", "credit:1", Balance(coins=400, gift_coins=200), None, 1.0)  # 2 min
    assert await store.hold("c1", "u1", COINS, 1, 2, OWNER, 10.0) is None
    assert await store.hold("c1", "u1", COINS, 1, 2, OWNER, 11.0) is None  # again: a no-op
    assert await store.hold("c2", "u1", COINS, 1, 2, OWNER, 12.0) is None  # 300 left for it
    assert await store.hold("c3", "u1", COINS, 1, 5, OWNER, 12.0) is Refusal.POOR
    assert await store.hold("c3", "u1", COINS, 1, 2, OWNER, 12.0) is Refusal.TOO_MANY
    # c1 answers: it may talk what c2's first minute leaves, one minute, and reserves it
    assert (await store.cap("c1", "u1", COINS, 1, OWNER, 13.0)).minutes == 1
    assert await store.held("u1") == {"c1": Reserved(cents=300), "c2": Reserved(cents=300)}
    await store.release("c2")
    assert (await store.cap("c1", "u1", COINS, 1, OWNER, 14.0)).minutes == 2  # alone now
    assert await store.hold("c4", "u1", COINS, 1, 2, OWNER, 15.0) is Refusal.POOR


async def test_grants_leave_room_for_the_accounts_second_call(engine: AsyncEngine) -> None:
    """A call answered on a large balance is granted a chunk, not the whole balance, so the
    account's second call still starts and talks; on a small balance the grants run out and
    say so."""
    ledger = LedgerStore(engine)
    store = ReservationStore(engine, ledger)
    await ledger.credit("g1", "credit:1", Balance(coins=30_000), None, 1.0)  # 100 minutes
    assert await store.hold("c1", "g1", COINS, 1, 2, OWNER, 10.0) is None
    assert await store.cap("c1", "g1", COINS, 1, OWNER, 11.0, up_to=5) == TalkGrant(5, False)
    assert await store.hold("c2", "g1", COINS, 1, 2, OWNER, 12.0) is None
    assert await store.cap("c2", "g1", COINS, 1, OWNER, 13.0, up_to=5) == TalkGrant(5, False)
    assert await store.held("g1") == {"c1": Reserved(cents=1500), "c2": Reserved(cents=1500)}
    assert await store.cap("c1", "g1", COINS, 1, OWNER, 300.0, up_to=10) == TalkGrant(10, False)

    await ledger.credit("g2", "credit:2", Balance(coins=1_800), None, 1.0)  # 6 minutes
    assert await store.hold("c3", "g2", COINS, 1, 2, OWNER, 10.0) is None
    assert await store.cap("c3", "g2", COINS, 1, OWNER, 11.0, up_to=5) == TalkGrant(5, False)
    assert await store.hold("c4", "g2", COINS, 1, 2, OWNER, 12.0) is None  # the 6th minute
    assert await store.cap("c4", "g2", COINS, 1, OWNER, 13.0, up_to=5) == TalkGrant(1, True)
    assert await store.cap("c3", "g2", COINS, 1, OWNER, 300.0, up_to=10) == TalkGrant(5, True)


async def test_package_minutes_and_two_leg_callbacks_reserve_by_leg(engine: AsyncEngine) -> None:
    ledger = LedgerStore(engine)
    store = ReservationStore(engine, ledger)
    await ledger.credit("d1", "credit:1", Balance(minutes=5), None, 1.0)
    assert await store.hold("cb", "d1", MINUTES, 2, 2, OWNER, 10.0) is None
    assert await store.held("d1") == {"cb": Reserved(minutes=2)}
    grant = await store.cap("cb", "d1", MINUTES, 2, OWNER, 11.0)
    assert grant.minutes == 2 and grant.final  # 5 minutes, two legs
    assert await store.held("d1") == {"cb": Reserved(minutes=4)}
    assert await store.hold("c2", "d1", MINUTES, 1, 2, OWNER, 12.0) is None  # the 5th minute
    assert await store.hold("c3", "d1", MINUTES, 1, 3, OWNER, 12.0) is Refusal.POOR


async def test_concurrent_starts_on_the_last_minute_let_one_through(engine: AsyncEngine) -> None:
    ledger = LedgerStore(engine)
    store = ReservationStore(engine, ledger)
    await ledger.credit("u2", "credit:1", Balance(coins=300), None, 1.0)
    refusals = await asyncio.gather(
        *(store.hold(f"c{i}", "u2", COINS, 1, 10, OWNER, 10.0 + i) for i in range(6))
    )
    assert sorted(refusals, key=str) == [None] + [Refusal.POOR] * 5


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[int, list[int], list[float]]:
    """A balance, the order in which N calls' steps (start, answer, a new grant, end) happen,
    and how long each call would talk if its grants let it."""
    calls = draw(st.integers(2, 5))
    steps = draw(st.permutations([call for call in range(calls) for _ in range(4)]))
    talk = draw(st.lists(st.floats(0, 900), min_size=calls, max_size=calls))
    return draw(st.integers(0, 3000)), steps, talk


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(case=interleavings())
async def test_any_interleaving_of_parallel_calls_charges_at_most_the_balance(
    engine: AsyncEngine, case: tuple[int, list[int], list[float]]
) -> None:
    cents, steps, talk = case
    uuid = f"p{next(_accounts)}"  # the engine lives across examples: a fresh account each
    ledger = LedgerStore(engine)
    store = ReservationStore(engine, ledger)
    records = RecordStore(engine, ledger)
    half = cents // 2
    await ledger.credit(
        uuid, "credit:" + uuid, Balance(coins=half, gift_coins=cents - half), None, 1.0
    )
    done = [0] * len(talk)
    started: set[int] = set()
    caps: dict[int, float] = {}
    granted: dict[int, TalkGrant] = {}
    answered: dict[int, float] = {}
    charged = forgiven = 0
    now = 100.0
    for call in steps:
        now += 1.0
        step, done[call] = done[call], done[call] + 1
        sid = f"{uuid}-{call}"
        if step == 0:
            if await store.hold(sid, uuid, COINS, 1, 2, OWNER, now) is None:
                started.add(call)
            assert len(await store.held(uuid)) <= 2
        elif step == 1 and call in started:
            granted[call] = await store.cap(sid, uuid, COINS, 1, OWNER, now, up_to=GRANT)
            answered[call] = now
            caps[call] = now + max(0.0, granted[call].minutes * 60 - CAP_MARGIN_S)  # hung up
        elif step == 2 and call in granted and not granted[call].final:
            up_to = granted[call].minutes + GRANT
            granted[call] = await store.cap(sid, uuid, COINS, 1, OWNER, now, up_to=up_to)
            caps[call] = answered[call] + max(0.0, granted[call].minutes * 60 - CAP_MARGIN_S)
        elif step == 3 and call in started:
            ended = min(now + talk[call], caps[call]) if call in caps else now
            record_ = record(sid, uuid, answered.get(call), ended)
            charge = await records.close(record_, COINS, now, sid)
            assert charge is not None
            charged += charge.cents
            forgiven += charge.forgiven_cents
    assert forgiven == 0 and charged <= cents
    left = await ledger.balance(uuid, now)
    assert left.coins + left.gift_coins == cents - charged and min(left.coins, left.gift_coins) >= 0
    assert await store.held(uuid) == {}
