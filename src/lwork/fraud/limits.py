"""An account's fraud limits and the decisions made with them; pure (time is passed in).

Amounts are in the account's billing unit: hundredths of a coin for coin-paying accounts,
package minutes for minute-paying ones (as the ledger keeps them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from lwork.fraud.prefixes import PrefixRules


@dataclass(frozen=True, slots=True)
class Limits:
    calls: PrefixRules = PrefixRules()
    """Destinations of calls (and of both callback legs)."""
    sms: PrefixRules = PrefixRules()
    """Numbers SMS codes may go to."""
    daily_cap: int = 0
    """Most spent per calendar day; 0: no cap."""
    calls_per_minute: int = 0
    """Calls started within 60 s beyond which the account is blocked; 0: off."""
    spend_per_minute: int = 0
    """Spending over the last 60 s at which the account is blocked; 0: off."""


@dataclass(frozen=True, slots=True)
class Override:
    """What the operator set for one account (``lwork fraud set``); None: the group's."""

    daily_cap: int | None = None
    allow_prefixes: tuple[str, ...] = ()
    """Added to the group's allow list."""
    deny_prefixes: tuple[str, ...] = ()
    """Added to the group's deny list."""
    callback_local: tuple[str, ...] = field(default=())
    """Numbers besides its own that the account may use as a callback's ``local``."""

    def applied_to(self, limits: Limits) -> Limits:
        calls = limits.calls.plus(self.allow_prefixes, self.deny_prefixes)
        cap = limits.daily_cap if self.daily_cap is None else self.daily_cap
        return replace(limits, calls=calls, daily_cap=cap)


def passes_daily_cap(limits: Limits, spent_today: int, first_minute_cost: int) -> bool:
    """Whether a call whose first minute costs ``first_minute_cost`` stays within the cap."""
    return limits.daily_cap <= 0 or spent_today + first_minute_cost <= limits.daily_cap


@dataclass(frozen=True, slots=True)
class Spend:
    """One call record: what it cost and when it ran (wall clock)."""

    cost: int
    answered_at: float
    ended_at: float


def spend_rate(records: Iterable[Spend], start: float, end: float) -> int:
    """What the calls spent within [start, end), each call's cost spread evenly over its
    duration: twenty one-minute calls that just ended weigh their full cost, one long call its
    last minute's share, so a long legitimate call does not look like a burst."""
    total = 0.0
    for record in records:
        duration = record.ended_at - record.answered_at
        if duration <= 0:
            continue
        overlap = min(end, record.ended_at) - max(start, record.answered_at)
        if overlap > 0:
            total += record.cost * overlap / duration
    return round(total)


def day_start(wall: float, zone: ZoneInfo) -> float:
    """When the calendar day holding ``wall`` began in ``zone`` (Unix time)."""
    local = dt.datetime.fromtimestamp(wall, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def is_own_number(local: str, own: Iterable[str], allowed: Iterable[str]) -> bool:
    """The callback rule (CONTRACT §6.3): ``local`` is the account's own number or one the
    operator allowed for it (all in one comparable form, see ``NumberPlan.key``)."""
    return local in set(own) | set(allowed)
