"""The cache behind query_status: each key read at most once per ttl, absent keys too, one read
for keys asked for together or while their read is in flight, bounded whatever is asked."""

from __future__ import annotations

import asyncio

from lwork.accounts.batch_cache import BatchCache

SOURCE = {"8613800000001": "8613800000001", "8675500000001": "8613800000002"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(clock: Clock, reads: list[list[str]], max_entries: int = 100) -> BatchCache[str, str]:
    async def fetch(keys: list[str]) -> dict[str, str]:
        reads.append(list(keys))
        await asyncio.sleep(0.01)
        return {k: SOURCE[k] for k in keys if k in SOURCE}

    return BatchCache(fetch, 2.0, clock, max_entries)


async def test_known_and_unknown_numbers_are_read_once_per_ttl() -> None:
    clock, reads = Clock(), []
    owners = cache(clock, reads)
    asked = ["8613800000001", "8675500000001", "8600000000000"]
    assert await owners.get_many(asked) == {k: SOURCE[k] for k in asked[:2]}
    clock.now += 1.9
    assert await owners.get_many(asked) == {k: SOURCE[k] for k in asked[:2]}
    assert reads == [asked]  # the unknown number was not asked again either
    clock.now += 0.2
    await owners.get_many(asked)
    assert reads == [asked, asked]


async def test_concurrent_asks_share_one_read() -> None:
    clock, reads = Clock(), []
    owners = cache(clock, reads)
    first, second = await asyncio.gather(
        owners.get_many(["8613800000001", "8600000000000"]), owners.get_many(["8613800000001"])
    )
    assert first == second == {"8613800000001": "8613800000001"}
    assert reads == [["8613800000001", "8600000000000"]]


async def test_a_forgotten_key_is_read_afresh() -> None:
    clock, reads = Clock(), []
    owners = cache(clock, reads)
    await owners.get_many(["8600000000000"])
    SOURCE["8600000000000"] = "8600000000000"  # an account appears
    try:
        owners.forget("8600000000000")
        assert await owners.get_many(["8600000000000"]) == {"8600000000000": "8600000000000"}
    finally:
        del SOURCE["8600000000000"]
    assert reads == [["8600000000000"], ["8600000000000"]]


async def test_strangers_asking_many_numbers_cannot_grow_it_without_bound() -> None:
    clock, reads = Clock(), []
    owners = cache(clock, reads, max_entries=10)
    for start in range(0, 100, 5):
        await owners.get_many([f"86{n:011d}" for n in range(start, start + 5)])
    assert len(owners._entries) <= 10
