"""Rating, pure: started minutes, gift coins first, never below zero, talk-time caps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lwork.billing.rating import (
    Balance,
    Tariff,
    billable_minutes,
    coins_value,
    talk_cap_s,
    to_cents,
)

COINS = Tariff(pays_minutes=False, cents_per_minute=300)
MINUTES = Tariff(pays_minutes=True)


def test_every_started_minute_is_billed() -> None:
    assert [billable_minutes(s) for s in (-5, 0, 0.5, 59.9, 60, 60.0004, 60.5, 61, 120, 121)] == [
        0, 0, 1, 1, 1, 1, 2, 2, 2, 3,
    ]  # fmt: skip


def test_amounts_are_exact_hundredths_shown_as_numbers() -> None:
    assert to_cents(2.5) == 250 and to_cents(0.1) + to_cents(0.2) == 30
    assert coins_value(300) == 3 and isinstance(coins_value(300), int)
    assert coins_value(250) == 2.5 and coins_value(-150) == -1.5 and coins_value(1) == 0.01


def test_gift_coins_go_first_then_coins() -> None:
    charge = COINS.charge(Balance(coins=1000, gift_coins=400), 2)
    assert (charge.gift_coins, charge.coins, charge.forgiven_cents) == (400, 200, 0)


def test_a_charge_the_balance_cannot_cover_is_forgiven_not_overdrawn() -> None:
    charge = COINS.charge(Balance(coins=100, gift_coins=50), 1)
    assert (charge.gift_coins, charge.coins, charge.forgiven_cents) == (50, 100, 150)
    minutes = MINUTES.charge(Balance(minutes=3), 5)
    assert (minutes.minutes, minutes.forgiven_minutes) == (3, 2)


def test_a_call_may_start_only_when_its_first_minute_is_paid() -> None:
    assert not COINS.can_start(Balance(coins=299))
    assert COINS.can_start(Balance(coins=150, gift_coins=150))
    assert not MINUTES.can_start(Balance(coins=10_000))
    assert MINUTES.can_start(Balance(minutes=1))


def test_talk_cap_is_what_the_balance_pays_in_whole_minutes() -> None:
    assert talk_cap_s(COINS, Balance(coins=1000)) == 180.0  # 3 minutes, 100 cents left over
    assert talk_cap_s(MINUTES, Balance(minutes=7)) == 420.0
    assert talk_cap_s(COINS, Balance(coins=-50)) == 0.0
    assert talk_cap_s(Tariff(pays_minutes=False, cents_per_minute=0), Balance()) is None


balances = st.builds(
    Balance,
    coins=st.integers(-10_000, 10**9),
    gift_coins=st.integers(-10_000, 10**9),
    minutes=st.integers(-100, 10**6),
)


@given(balances, st.integers(0, 10_000), st.integers(1, 10_000), st.booleans())
def test_a_charge_takes_exactly_the_cost_and_nothing_below_zero(
    balance: Balance, minutes: int, rate: int, pays_minutes: bool
) -> None:
    tariff = Tariff(pays_minutes=pays_minutes, cents_per_minute=rate)
    charge = tariff.charge(balance, minutes)
    assert min(charge.coins, charge.gift_coins, charge.minutes) >= 0
    if pays_minutes:
        assert charge.minutes + charge.forgiven_minutes == minutes
        assert charge.minutes <= max(0, balance.minutes) and charge.cents == 0
    else:
        assert charge.cents + charge.forgiven_cents == minutes * rate
        assert charge.coins <= max(0, balance.coins)
        assert charge.gift_coins <= max(0, balance.gift_coins)
        assert charge.minutes == 0


@given(balances, st.integers(1, 10_000), st.booleans())
def test_a_call_within_its_cap_is_paid_in_full(
    balance: Balance, rate: int, pays_minutes: bool
) -> None:
    tariff = Tariff(pays_minutes=pays_minutes, cents_per_minute=rate)
    cap = talk_cap_s(tariff, balance)
    assert cap is not None
    charge = tariff.charge(balance, billable_minutes(cap))
    assert charge.forgiven_cents == 0 and charge.forgiven_minutes == 0
