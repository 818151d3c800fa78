from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.accounts.phone import normalise_phone
from lwork.ratelimit import RateLimiter


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "8613800138000"),
        ("008613800138000", "13800138000"),
        ("00861012345678", "01012345678"),
        ("0086212345678", "0212345678"),
        ("*99#", "*99#"),
        ("abc", ""),
    ],
)
def test_normalise_phone(raw: str, normal: str) -> None:
    assert normalise_phone(raw) == normal


@given(st.text(max_size=40))
def test_normalised_phone_has_only_dial_characters(raw: str) -> None:
    assert set(normalise_phone(raw)) <= set("0123456789*#")


def test_limiter_allows_the_limit_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(limit=3, period=60)
    assert [limiter.hit("ip", 1000.0 + i) for i in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.hit("ip", 1003.0)
    assert 0 < wait <= 60
    assert limiter.hit("other", 1003.0) == 0.0


def test_limiter_window_slides() -> None:
    limiter = RateLimiter(limit=10, period=60)
    for i in range(10):
        assert limiter.hit("k", 1200.0 + i) == 0.0  # window [1200, 1260)
    assert limiter.hit("k", 1259.0) > 0
    # just after the boundary almost all of the previous window still counts
    assert limiter.hit("k", 1261.0) > 0
    # near the end of the next window the previous one has nearly decayed
    assert limiter.hit("k", 1315.0) == 0.0


def test_check_does_not_count() -> None:
    limiter = RateLimiter(limit=1, period=60)
    assert limiter.check("k", 0.0) == 0.0
    assert limiter.check("k", 0.0) == 0.0
    assert limiter.hit("k", 0.0) == 0.0
    assert limiter.check("k", 1.0) > 0


def test_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(limit=5, period=60, max_keys=100)
    for i in range(1000):
        limiter.hit(f"ip{i}", float(i))
    assert len(limiter._windows) <= 100
