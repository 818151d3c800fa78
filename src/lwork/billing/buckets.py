"""Dated package minutes, pure: buckets, what is usable at an instant, and expiring-first use.

Theory of operation (CONTRACT §8 "the package expiring first"). A package of ``minutes`` per
period over ``periods`` periods is one bucket per period, each usable from ``valid_from`` until
just before ``expires_at``. Minutes credited without a period (BOSS ``credit --minutes``, the
welcome gift, ``boss.open_minutes``, and every minute balance older than the buckets) are one
bucket with no expiry, used after every dated one. At an instant only the buckets valid then
count; a call takes from the one expiring first, then the next.

A bucket that expires during a call still pays for it: a call is charged from the buckets
usable when it was *answered*, because its talk-time cap was granted from them. Its reservation
keeps other calls from counting those minutes meanwhile.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Bucket:
    id: int
    minutes_left: int
    valid_from: float
    expires_at: float | None
    """Unix time it stops counting (exclusive); None: never."""

    def usable_at(self, at: float) -> bool:
        return (
            self.minutes_left > 0
            and self.valid_from <= at
            and (self.expires_at is None or at < self.expires_at)
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """A bucket to create."""

    minutes: int
    valid_from: float
    expires_at: float | None


def _expiry_key(bucket: Bucket) -> tuple[float, float, int]:
    expiry = math.inf if bucket.expires_at is None else bucket.expires_at
    return (expiry, bucket.valid_from, bucket.id)


def usable(buckets: Iterable[Bucket], at: float) -> list[Bucket]:
    """The buckets valid at ``at`` with minutes left, expiring first (no expiry last)."""
    return sorted((b for b in buckets if b.usable_at(at)), key=_expiry_key)


def unexpired(buckets: Iterable[Bucket], at: float) -> list[Bucket]:
    """The buckets with minutes left not expired at ``at`` (usable then or later), expiring
    first."""
    return sorted(
        (b for b in buckets
         if b.minutes_left > 0 and (b.expires_at is None or at < b.expires_at)),
        key=_expiry_key,
    )  # fmt: skip


def total(buckets: Iterable[Bucket], at: float) -> int:
    return sum(b.minutes_left for b in buckets if b.usable_at(at))


def earliest_expiry(buckets: Iterable[Bucket], at: float) -> float | None:
    """When the first usable minutes expire; None when nothing usable expires."""
    dated = [b.expires_at for b in usable(buckets, at) if b.expires_at is not None]
    return min(dated, default=None)


def consume(buckets: Iterable[Bucket], minutes: int, at: float) -> list[tuple[int, int]]:
    """Take up to ``minutes`` from the buckets usable at ``at``, expiring first: (bucket id,
    minutes taken) pairs, never more than a bucket holds nor than ``minutes``."""
    taken: list[tuple[int, int]] = []
    wanted = max(0, minutes)
    for bucket in usable(buckets, at):
        if wanted == 0:
            break
        take = min(wanted, bucket.minutes_left)
        taken.append((bucket.id, take))
        wanted -= take
    return taken


def undated(minutes: int, at: float) -> list[Grant]:
    """Minutes without a period: one bucket that never expires."""
    return [Grant(minutes, at, None)] if minutes > 0 else []


def day_periods(minutes: int, periods: int, period_days: int, start: float) -> list[Grant]:
    """A package bought at ``start``: ``periods`` back-to-back periods of ``period_days``."""
    length = period_days * 86400.0
    return [Grant(minutes, start + i * length, start + (i + 1) * length) for i in range(periods)]


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` ``months`` later, on the last day of the month when it has fewer days."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_periods(minutes: int, periods: int, start: dt.date, zone: ZoneInfo) -> list[Grant]:
    """A package of calendar months from ``start`` (midnight in ``zone``), the BOSS's
    ``package`` with ``period: month``: a period from the 31st of January ends at the start
    of the 28th (29th) of February."""

    def midnight(day: dt.date) -> float:
        return dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()

    bounds = [midnight(add_months(start, i)) for i in range(periods + 1)]
    return [Grant(minutes, bounds[i], bounds[i + 1]) for i in range(periods)]


def last_day(expires_at: float, zone: ZoneInfo) -> dt.date:
    """The last day (in ``zone``) minutes expiring at ``expires_at`` can be used on."""
    return dt.datetime.fromtimestamp(expires_at - 1e-3, zone).date()


def granted(grants: Sequence[Grant]) -> int:
    return sum(g.minutes for g in grants)
