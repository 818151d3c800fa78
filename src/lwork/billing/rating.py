"""Rating, pure: what a call through the SIP trunk costs and how long a balance lets one last.

Theory of operation (CONTRACT §8). Coins are kept as integer hundredths ("cents") so sums are
exact; the apps see them as numbers. A ``common`` account pays coins per started minute, gift
coins first; a ``dth`` account pays package minutes, one per started minute. A charge never
takes a balance below zero: what the balance cannot cover is *forgiven* and recorded as such,
which only happens when two charges race (the talk-time cap, computed from the balance at
answer, keeps a single call within what it can pay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

COIN = 100
"""Cents per coin."""


def to_cents(coins: float) -> int:
    return round(coins * COIN)


def coins_value(cents: int) -> int | float:
    """How the apps see an amount: a whole number while it is one, else two decimals."""
    whole, rest = divmod(cents, COIN)
    return whole if rest == 0 else round(cents / COIN, 2)


def billable_minutes(seconds: float) -> int:
    """Started minutes of a talk of ``seconds`` (60 s is one minute, 61 s two)."""
    if seconds <= 0:
        return 0
    return math.ceil(round(seconds, 3) / 60)


@dataclass(frozen=True, slots=True)
class Balance:
    coins: int = 0
    """Cents of bought coins."""
    gift_coins: int = 0
    """Cents of gift coins, spent before bought ones."""
    minutes: int = 0
    """Package minutes (``dth``)."""


@dataclass(frozen=True, slots=True)
class Tariff:
    """What one started minute costs an account of a group, in its own unit."""

    pays_minutes: bool
    """True: package minutes (``dth``); False: coins."""
    cents_per_minute: int = 0

    def affordable_minutes(self, balance: Balance) -> int:
        if self.pays_minutes:
            return max(0, balance.minutes)
        if self.cents_per_minute <= 0:
            return UNLIMITED
        return max(0, balance.coins + balance.gift_coins) // self.cents_per_minute

    def can_start(self, balance: Balance) -> bool:
        """A call may start when the balance pays at least its first minute."""
        return self.affordable_minutes(balance) >= 1

    def charge(self, balance: Balance, minutes: int) -> Charge:
        """Take ``minutes`` from ``balance``: gift coins first, never below zero."""
        if self.pays_minutes:
            taken = min(minutes, max(0, balance.minutes))
            return Charge(minutes=taken, forgiven_minutes=minutes - taken)
        cost = minutes * self.cents_per_minute
        gift = min(cost, max(0, balance.gift_coins))
        coins = min(cost - gift, max(0, balance.coins))
        return Charge(gift_coins=gift, coins=coins, forgiven_cents=cost - gift - coins)


UNLIMITED = 1 << 31
"""Affordable minutes of a free tariff."""


@dataclass(frozen=True, slots=True)
class Charge:
    """What a charge takes (all non-negative) and what the balance could not cover."""

    coins: int = 0
    gift_coins: int = 0
    minutes: int = 0
    forgiven_cents: int = 0
    forgiven_minutes: int = 0

    @property
    def cents(self) -> int:
        return self.coins + self.gift_coins


def talk_cap_s(tariff: Tariff, balance: Balance) -> float | None:
    """The longest talk ``balance`` pays for (None: unlimited)."""
    minutes = tariff.affordable_minutes(balance)
    return None if minutes >= UNLIMITED else minutes * 60.0


@dataclass(frozen=True, slots=True)
class Reserved:
    """What live paid calls may still spend: their talk-time caps' worth (CONTRACT §8)."""

    cents: int = 0
    minutes: int = 0

    def __add__(self, other: Reserved) -> Reserved:
        return Reserved(self.cents + other.cents, self.minutes + other.minutes)


def reserve(tariff: Tariff, minutes: int) -> Reserved:
    """The reservation of ``minutes`` of talk at ``tariff``."""
    if tariff.pays_minutes:
        return Reserved(minutes=minutes)
    return Reserved(cents=minutes * tariff.cents_per_minute)


def spendable(balance: Balance, reserved: Reserved) -> Balance:
    """The balance once other live calls have spent all they may (gift coins go first, as a
    charge takes them)."""
    gift = max(0, balance.gift_coins)
    from_gift = min(gift, reserved.cents)
    coins = max(0, balance.coins) - (reserved.cents - from_gift)
    return Balance(coins=max(0, coins), gift_coins=gift - from_gift,
                   minutes=max(0, balance.minutes - reserved.minutes))  # fmt: skip
