"""The counting of the machine-wide rate limits (``SharedRateLimiter``), pure: time is passed in,
reports are handed from one limiter to the others by the test."""

from __future__ import annotations

import heapq
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.ratelimit import QUOTA_WAIT_S, SharedRateLimiter

T0 = 6000.0  # the start of a 60 s window


def test_a_process_alone_with_a_key_gets_the_whole_limit_over_a_few_periods() -> None:
    limiter = SharedRateLimiter(limit=10, period=60, peers=2)
    admitted, now = 0, T0
    for _ in range(40):  # a client hammering one worker, its reports going out each period
        for _ in range(5):
            admitted += not limiter.hit("ip", now)
        limiter.report()
        now += 0.1
    assert admitted == 10
    assert limiter.hit("ip", now) > 1  # the limit itself: wait for the window to slide


def test_within_one_period_a_process_admits_its_share_of_what_remains() -> None:
    limiter = SharedRateLimiter(limit=40, period=60, peers=2)
    assert sum(not limiter.hit("ip", T0) for _ in range(20)) == 10  # 40 / 2²
    assert limiter.hit("ip", T0) == QUOTA_WAIT_S
    assert limiter.check("ip", T0) == QUOTA_WAIT_S  # check judges as hit does
    assert limiter.report() == [(100, "ip", 10)]
    assert limiter.report() == []
    assert sum(not limiter.hit("ip", T0 + 0.1) for _ in range(20)) == 8  # ceil(30 / 4)


def test_the_others_counts_count() -> None:
    limiter = SharedRateLimiter(limit=10, period=60, peers=2)
    limiter.absorb(100, "ip", 9, T0 + 1)
    assert not limiter.hit("ip", T0 + 1)
    assert limiter.hit("ip", T0 + 1) > 1
    # last window's counts weigh as the sliding window says; older ones not at all
    limiter.absorb(101, "other", 1, T0 + 61)
    limiter.absorb(100, "other", 10, T0 + 61)
    limiter.absorb(99, "other", 10, T0 + 61)
    assert limiter.hit("other", T0 + 61) > 0  # 10 × (59 / 60) + 1 left no room
    assert not limiter.hit("other", T0 + 90)  # 10 × (1 / 2) + 1: room again


def test_counts_of_a_window_that_rolled_over_are_reported_with_its_number() -> None:
    limiter = SharedRateLimiter(limit=100, period=60, peers=2)
    assert not limiter.hit("ip", T0 + 59.95)
    assert not limiter.hit("ip", T0 + 60.01)
    assert sorted(limiter.report()) == [(100, "ip", 1), (101, "ip", 1)]


def test_one_process_stays_exactly_within_the_limit() -> None:
    limiter = SharedRateLimiter(limit=7, period=60, peers=1)
    assert sum(not limiter.hit("ip", T0 + n / 100) for n in range(50)) == 7


@given(
    st.lists(
        st.tuples(st.integers(-(2**40), 2**40), st.text(max_size=20), st.integers(1, 2**31)),
        max_size=30,
    )
)
def test_any_reports_are_absorbed_without_raising(reports: list[tuple[int, str, int]]) -> None:
    limiter = SharedRateLimiter(limit=5, period=60, peers=3, max_keys=8)
    for window, key, count in reports:
        limiter.absorb(window, key, count, T0)
        limiter.hit(key, T0)
    limiter.report()


def admitted_by_spread_attack(peers: int, limit: int, late_s: float, seed: int) -> int:
    """``peers`` limiters, each reporting every 0.1 s at its own phase, its reports reaching the
    others up to ``late_s`` later; an attack of random rate spread over them for 2 s."""
    rnd = random.Random(seed)
    limiters = [SharedRateLimiter(limit, 60.0, peers) for _ in range(peers)]
    rate = rnd.choice([1_000, 5_000])
    events: list[tuple[float, int, int, int, list[tuple[int, str, int]]]] = []
    order = 0
    now = T0 + 1
    while now < T0 + 3:
        now += rnd.expovariate(rate)
        events.append((now, order := order + 1, 1, rnd.randrange(peers), []))
    for peer in range(peers):
        tick = T0 + 1 + rnd.random() * 0.1
        while tick < T0 + 3.5:
            events.append((tick, order := order + 1, 0, peer, []))
            tick += 0.1
    heapq.heapify(events)
    admitted = 0
    while events:
        now, _, kind, peer, reports = heapq.heappop(events)
        if kind == 1:  # a request
            admitted += not limiters[peer].hit("ip", now)
        elif kind == 0:  # a report, sent to every other peer
            sent = limiters[peer].report()
            for other in range(peers):
                if other != peer and sent:
                    at = now + rnd.random() * late_s
                    heapq.heappush(events, (at, order := order + 1, 2, other, sent))
        else:
            for window, key, count in reports:
                limiters[peer].absorb(window, key, count, now)
    return admitted


@pytest.mark.parametrize(
    ("peers", "limit", "late_s", "most"),
    [
        *((2, limit, 0.002, limit + 2) for limit in (6, 10, 40, 600)),
        *((2, limit, 0.1, limit * 1.15 + 4) for limit in (6, 10, 40, 600)),
        *((4, limit, 0.1, limit * 1.02 + 7) for limit in (6, 10, 40, 600)),
    ],
)
def test_an_attack_spread_over_the_processes_gets_the_documented_overshoot_at_most(
    peers: int, limit: int, late_s: float, most: float
) -> None:
    """The figures ``SharedRateLimiter`` documents; ``peers`` × the limit without sharing."""
    results = [admitted_by_spread_attack(peers, limit, late_s, seed) for seed in range(40)]
    assert max(results) <= most, max(results)
    assert min(results) >= limit  # the attack does spend the whole limit
