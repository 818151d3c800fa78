"""The packet path's token bucket, with time passed in."""

from lwork.media.relay.token_bucket import TokenBucket


def test_take_allows_a_seconds_worth_then_the_rate() -> None:
    bucket = TokenBucket(10.0, 0.0)
    assert sum(bucket.take(0.0) for _ in range(30)) == 10
    assert not bucket.take(0.05)  # half a token refilled: not enough
    assert bucket.take(0.1)
    assert sum(bucket.take(100.0) for _ in range(30)) == 10  # saved up to one second only


def test_time_running_backwards_refills_nothing() -> None:
    bucket = TokenBucket(10.0, 5.0)
    assert sum(bucket.take(5.0) for _ in range(10)) == 10
    assert not bucket.take(4.0) and bucket.at == 5.0


def test_spend_overdrawn_empties_the_bucket() -> None:
    bucket = TokenBucket(10.0, 0.0)
    assert bucket.spend(4, 0.0) and bucket.tokens == 6.0
    assert not bucket.spend(7, 0.0) and bucket.tokens == 0.0
    assert bucket.spend(1, 0.1)
