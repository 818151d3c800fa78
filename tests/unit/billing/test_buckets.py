"""Dated package minutes, pure: what is usable at an instant and expiring-first use."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from lwork.billing.buckets import (
    Bucket,
    add_months,
    consume,
    day_periods,
    earliest_expiry,
    last_day,
    month_periods,
    total,
    unexpired,
    usable,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = 86400.0


@st.composite
def bucket_lists(draw: st.DrawFn) -> list[Bucket]:
    count = draw(st.integers(0, 8))
    buckets = []
    for i in range(count):
        start = draw(st.floats(0, 1000, allow_nan=False))
        length = draw(st.none() | st.floats(1, 1000, allow_nan=False))
        buckets.append(
            Bucket(i, draw(st.integers(0, 500)), start, None if length is None else start + length)
        )
    return buckets


instants = st.floats(-10, 2100, allow_nan=False)


@given(bucket_lists(), st.integers(-5, 3000), instants)
def test_consumption_takes_only_unexpired_minutes_expiring_first(
    buckets: list[Bucket], wanted: int, at: float
) -> None:
    taken = consume(buckets, wanted, at)
    by_id = {b.id: b for b in buckets}
    # never more than asked, nor than what is usable at `at`, and all of it when it is there
    assert sum(n for _, n in taken) == min(max(0, wanted), total(buckets, at))
    for bucket_id, amount in taken:
        bucket = by_id[bucket_id]
        assert bucket.usable_at(at) and 0 < amount <= bucket.minutes_left
    # expiring first: every bucket before the last one touched is emptied
    ids = [bucket_id for bucket_id, _ in taken]
    order = [b.id for b in usable(buckets, at)]
    assert ids == order[: len(ids)]
    for bucket_id, amount in taken[:-1]:
        assert amount == by_id[bucket_id].minutes_left


@given(bucket_lists(), st.integers(0, 3000), instants)
def test_consumption_conserves_minutes(buckets: list[Bucket], wanted: int, at: float) -> None:
    taken = dict(consume(buckets, wanted, at))
    after = [
        Bucket(b.id, b.minutes_left - taken.get(b.id, 0), b.valid_from, b.expires_at)
        for b in buckets
    ]
    before_all = sum(b.minutes_left for b in buckets)
    assert sum(b.minutes_left for b in after) == before_all - sum(taken.values())
    assert total(after, at) == total(buckets, at) - sum(taken.values())
    assert all(b.minutes_left >= 0 for b in after)


@given(bucket_lists(), instants)
def test_the_earliest_expiry_is_of_a_usable_bucket(buckets: list[Bucket], at: float) -> None:
    expiry = earliest_expiry(buckets, at)
    dated = [b for b in usable(buckets, at) if b.expires_at is not None]
    if not dated:
        assert expiry is None
    else:
        assert expiry == min(b.expires_at for b in dated if b.expires_at is not None)
        assert at < expiry
    assert all(b.minutes_left > 0 for b in unexpired(buckets, at))


def test_expired_and_future_buckets_do_not_count() -> None:
    buckets = [Bucket(1, 10, 0.0, 100.0), Bucket(2, 20, 100.0, 200.0), Bucket(3, 5, 0.0, None)]
    assert total(buckets, 50.0) == 15
    assert total(buckets, 100.0) == 25  # the first expired as the second began
    assert total(buckets, 500.0) == 5
    assert consume(buckets, 12, 50.0) == [(1, 10), (3, 2)]  # no expiry goes last
    assert [b.id for b in unexpired(buckets, 50.0)] == [1, 2, 3]  # the future one is listed


def test_a_bought_package_runs_in_back_to_back_periods() -> None:
    grants = day_periods(300, 3, 30, 1000.0)
    assert [(g.minutes, g.valid_from, g.expires_at) for g in grants] == [
        (300, 1000.0, 1000.0 + 30 * DAY),
        (300, 1000.0 + 30 * DAY, 1000.0 + 60 * DAY),
        (300, 1000.0 + 60 * DAY, 1000.0 + 90 * DAY),
    ]


def test_month_periods_follow_the_calendar_in_the_billing_time_zone() -> None:
    grants = month_periods(100, 3, dt.date(2026, 1, 31), SHANGHAI)

    def day(at: float | None) -> dt.datetime:
        assert at is not None
        return dt.datetime.fromtimestamp(at, SHANGHAI)

    assert [day(g.valid_from).date() for g in grants] == [
        dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31)]  # fmt: skip
    assert day(grants[0].valid_from).hour == 0
    assert grants[0].expires_at == grants[1].valid_from
    assert day(grants[2].expires_at).date() == dt.date(2026, 4, 30)
    assert last_day(grants[0].expires_at or 0, SHANGHAI) == dt.date(2026, 2, 27)


@given(st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)), st.integers(0, 240))
def test_adding_months_lands_in_the_right_month(day: dt.date, months: int) -> None:
    later = add_months(day, months)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    assert later.day == day.day or later.day < day.day and (later + dt.timedelta(1)).day == 1
