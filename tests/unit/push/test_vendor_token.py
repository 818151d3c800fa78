"""The shared access-token cache of the token-based push vendors."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from lwork.push.providers.vendor_token import VendorToken, lifetime


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_fetch_serves_concurrent_sends_until_renewal_is_due() -> None:
    clock = Clock()
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        await asyncio.sleep(0.01)
        issued.append(f"t{len(issued)}")
        return issued[-1], 3600.0

    token = VendorToken(fetch, margin_s=120, clock=clock)
    assert set(await asyncio.gather(*(token.value() for _ in range(10)))) == {"t0"}
    clock.now += 3600 - 121
    assert await token.value() == "t0"
    clock.now += 2  # inside the margin: renewed before the vendor would refuse it
    assert await token.value() == "t1"
    token.invalidate("t0")  # an old value does not drop the current one
    assert await token.value() == "t1"
    token.invalidate("t1")
    assert await token.value() == "t2"


async def test_a_short_lived_token_is_renewed_halfway_not_every_time() -> None:
    clock = Clock()
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        return f"t{calls}", 60.0

    token = VendorToken(fetch, margin_s=120, clock=clock)
    await token.value()
    clock.now += 29
    await token.value()
    assert calls == 1
    clock.now += 2
    await token.value()
    assert calls == 2


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                 st.lists(st.integers(), max_size=2)))  # fmt: skip
def test_lifetime_is_always_a_sane_number(value: object) -> None:
    seconds = lifetime(value, 3600.0)
    assert 1.0 <= seconds <= 7 * 86400.0
