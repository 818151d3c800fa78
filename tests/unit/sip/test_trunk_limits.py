"""The calls-per-second token bucket, with time passed in."""

from hypothesis import given
from hypothesis import strategies as st

from lwork.sip.trunk.limits import TokenBucket


def test_full_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=2.0)
    assert [bucket.try_take(100.0) for _ in range(3)] == [True, True, False]


def test_tokens_come_back_at_the_configured_rate() -> None:
    bucket = TokenBucket(rate=2.0)
    assert bucket.try_take(0.0) and bucket.try_take(0.0)
    assert not bucket.try_take(0.4)  # 0.8 of a token so far
    assert bucket.try_take(0.5)
    assert not bucket.try_take(0.5)


def test_idle_time_never_saves_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    assert bucket.tokens(0.0) == 3.0
    for _ in range(3):
        assert bucket.try_take(0.0)
    assert bucket.tokens(1000.0) == 3.0


def test_fractional_rate_rounds_the_burst_up_to_one_call() -> None:
    bucket = TokenBucket(rate=0.5)
    assert bucket.try_take(0.0)
    assert not bucket.try_take(1.0)
    assert bucket.try_take(2.0)


def test_a_clock_stepping_back_mints_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.try_take(10.0)
    assert not bucket.try_take(5.0)
    assert not bucket.try_take(10.5)
    assert bucket.try_take(11.0)


@given(
    rate=st.floats(min_value=0.1, max_value=100.0),
    steps=st.lists(st.floats(min_value=0.0, max_value=5.0), max_size=60),
)
def test_never_more_calls_than_burst_plus_rate_times_elapsed(
    rate: float, steps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate)
    now, taken = 0.0, 0
    for step in steps:
        now += step
        taken += bucket.try_take(now)
    assert taken <= bucket.burst + rate * now + 1e-9
