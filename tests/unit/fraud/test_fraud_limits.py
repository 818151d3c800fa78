"""Fraud limits, pure: defaults by env, overrides, daily cap, spending rate, velocity windows."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.fraud.defaults import group_limits, prefix_calls_per_minute
from lwork.fraud.limits import (
    Limits,
    Override,
    Spend,
    day_start,
    is_own_number,
    passes_daily_cap,
    spend_rate,
)
from lwork.fraud.prefixes import PrefixRules
from lwork.fraud.velocity import SWEEP_EVERY, WindowCounter
from lwork.settings import FraudGroupSettings, FraudSettings


def test_development_allows_everything_and_production_guards() -> None:
    unset = FraudGroupSettings()
    assert group_limits(unset, production=False, pays_minutes=False) == Limits()
    coins = group_limits(unset, production=True, pays_minutes=False)
    assert coins.daily_cap == 30_000 and coins.spend_per_minute == 6_000  # cents
    assert coins.calls_per_minute == 10 and not coins.calls.permits("+442079460000")
    minutes = group_limits(unset, production=True, pays_minutes=True)
    assert (minutes.daily_cap, minutes.spend_per_minute) == (600, 20)
    assert prefix_calls_per_minute(FraudSettings(), production=True) == 30
    assert prefix_calls_per_minute(FraudSettings(), production=False) == 0


def test_configured_values_apply_in_every_env() -> None:
    section = FraudGroupSettings(deny_prefixes=["+1900"], daily_cap=2.5, calls_per_minute=0)
    for production in (False, True):
        limits = group_limits(section, production, pays_minutes=False)
        assert limits.daily_cap == 250 and limits.calls_per_minute == 0
        assert not limits.calls.permits("+19005550100")
    with pytest.raises(ValueError, match="E.164 prefix"):
        FraudGroupSettings(allow_prefixes=["0086"])


def test_an_override_adds_prefixes_and_replaces_the_cap() -> None:
    group = Limits(calls=PrefixRules(("+86",), ("+",)), daily_cap=100)
    limits = Override(daily_cap=None, allow_prefixes=("+852",)).applied_to(group)
    assert limits.daily_cap == 100 and limits.calls.permits("+85212345678")
    limits = Override(daily_cap=0, deny_prefixes=("+8613800",)).applied_to(group)
    assert limits.daily_cap == 0 and not limits.calls.permits("+8613800138000")


@given(st.integers(0, 10_000), st.integers(0, 1_000), st.integers(0, 10_000))
def test_the_daily_cap_refuses_a_first_minute_beyond_it(cap: int, first: int, spent: int) -> None:
    assert passes_daily_cap(Limits(daily_cap=cap), spent, first) == (
        cap == 0 or spent + first <= cap
    )


def test_spending_rate_spreads_each_call_over_its_duration() -> None:
    now = 10_000.0
    burst = [Spend(300, now - 50, now - 5) for _ in range(20)]  # 20 parallel short calls
    assert spend_rate(burst, now - 60, now) == 6_000
    long_call = [Spend(6_000, now - 2_400, now)]  # 40 minutes that just ended
    assert spend_rate(long_call, now - 60, now) == 150
    assert spend_rate([Spend(300, now - 200, now - 100), Spend(5, now, now)], now - 60, now) == 0


@given(st.lists(st.tuples(st.integers(0, 10_000), st.floats(0, 500), st.floats(0, 500))))
def test_spending_rate_never_exceeds_what_was_spent(rows: list[tuple[int, float, float]]) -> None:
    spends = [Spend(cost, 1_000 - a - b, 1_000 - b) for cost, a, b in rows]
    assert 0 <= spend_rate(spends, 940, 1_000) <= sum(s.cost for s in spends) + 1


def test_the_day_starts_at_midnight_in_the_billing_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    wall = 1_775_000_000.0  # 2026-04-01 07:33:20 in Shanghai
    assert day_start(wall, shanghai) == 1_774_972_800.0  # 2026-04-01 00:00 +08:00
    assert day_start(wall, ZoneInfo("UTC")) == 1_774_915_200.0


def test_the_callback_local_is_the_own_number_or_an_allowed_one() -> None:
    assert is_own_number("+8613800000001", ["+8613800000001"], [])
    assert not is_own_number("+8613900000002", ["+8613800000001"], [])
    assert is_own_number("+8613900000002", ["+8613800000001"], ["+8613900000002"])


def test_velocity_counts_within_the_window_and_forgets_quiet_keys() -> None:
    counter = WindowCounter(60.0)
    assert [counter.add("a", t) for t in (0.0, 10.0, 59.0)] == [1, 2, 3]
    assert counter.add("a", 60.5) == 3  # the event at 0 left the window
    assert counter.count("a", 200.0) == 0
    counter.reset("a")
    assert counter.count("a", 60.5) == 0
    for n in range(SWEEP_EVERY):
        counter.add(f"range{n}", float(n) * 0.001)
    assert len(counter) == SWEEP_EVERY
    for _ in range(SWEEP_EVERY):  # a sweep comes at least every SWEEP_EVERY events
        counter.add("late", 1_000.0)
    assert len(counter) == 1  # every quiet range was forgotten
