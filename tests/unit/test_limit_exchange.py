"""Two workers' shared limits over a real hub and Unix socket pairs, as ``http.workers`` has
them: what one admits, the other counts within an exchange period."""

from __future__ import annotations

import asyncio
import socket
import time

from hypothesis import given
from hypothesis import strategies as st

from lwork.http.shared_limits import (
    EXCHANGE_S,
    LimitExchange,
    limiter_factory,
    machine_limiter,
)
from lwork.push.local_bus import Counts, Hub, LocalBus
from lwork.ratelimit import RateLimiter, SharedRateLimiter


def linked(hub: Hub) -> LocalBus:
    ours, theirs = socket.socketpair()
    hub.attach(ours)
    return LocalBus(theirs, on_lost=lambda: None)


async def test_what_one_worker_admits_the_other_counts() -> None:
    hub = Hub()
    one = LimitExchange(linked(hub), 2, time.monotonic)
    two = LimitExchange(linked(hub), 2, time.monotonic)
    limits = [exchange.limiter("http.ip", 8, 60.0) for exchange in (one, two)]
    for exchange in (one, two):
        await exchange.start()
    try:
        admitted = 0
        for _ in range(30):  # both workers hit by one address, for 1.5 s
            now = time.monotonic()
            admitted += sum(not limit.hit("198.51.100.7", now) for limit in limits)
            await asyncio.sleep(EXCHANGE_S / 2)
        # the limit + 2 (``SharedRateLimiter``): in step as here, each worker admits its one
        # last share in the same loop turn as the other's report comes in
        assert 8 <= admitted <= 10
        now = time.monotonic()
        assert all(limit.hit("198.51.100.7", now) > 1 for limit in limits)
        assert limits[0].check("another", now) == 0
    finally:
        for exchange in (one, two):
            await exchange.close()
        await hub.close()


@given(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.dictionaries(st.text(max_size=30), st.integers(min_value=1, max_value=2**31), max_size=8),
)
def test_any_counts_a_worker_is_given_are_taken_without_raising(
    limiter: str, window: int, counts: dict[str, int]
) -> None:
    ours, theirs = socket.socketpair()
    try:
        exchange = LimitExchange(LocalBus(theirs, on_lost=lambda: None), 2, time.monotonic)
        exchange.limiter("http.ip", 5, 60.0)
        exchange.received(Counts(limiter, window, counts))
        exchange.received(Counts("http.ip", window, counts))
    finally:
        ours.close()
        theirs.close()


def test_one_worker_builds_its_own_limiters_several_build_shared_ones() -> None:
    ours, theirs = socket.socketpair()
    try:
        exchange = LimitExchange(LocalBus(theirs, on_lost=lambda: None), 3, time.monotonic)
        with limiter_factory(exchange):
            shared = machine_limiter("admin.sign_in.address", 10, 60.0)
        with limiter_factory(None):
            own = machine_limiter("admin.sign_in.address", 10, 60.0)
        assert isinstance(shared, SharedRateLimiter) and shared.peers == 3
        assert type(own) is RateLimiter
        assert type(machine_limiter("x", 1, 1.0)) is RateLimiter  # outside: its own
    finally:
        ours.close()
        theirs.close()
