"""The survivor freezer against the real collector of this process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator

import pytest

from lwork.gcpolicy import YOUNG_THRESHOLD, SurvivorFreezer


@pytest.fixture
async def freezer() -> AsyncIterator[tuple[SurvivorFreezer, list[float]]]:
    clock = [0.0]
    gc.unfreeze()
    freezer = SurvivorFreezer(release_every_s=60.0, monotonic=lambda: clock[0])
    freezer.start(every_s=3600)
    try:
        yield freezer, clock
    finally:
        await freezer.close()
        gc.unfreeze()


async def test_survivors_of_any_collection_are_frozen_and_released_when_due(
    freezer: tuple[SurvivorFreezer, list[float]],
) -> None:
    policy, clock = freezer
    gc.disable()  # only the collections this test makes
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        kept = [[n] for n in range(1000)]  # long-lived, tracked objects
        gc.collect(0)
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        more = [[n] for n in range(1000)]
        # Nothing is frozen between collections. (A frozen object another thread of the test
        # process drops is freed by reference counting and leaves the count: it can shrink.)
        assert gc.get_freeze_count() <= frozen
        gc.collect(0)
        assert gc.get_freeze_count() >= frozen + len(more)
        policy.release_if_due()
        assert gc.get_freeze_count() >= frozen + len(more)  # not due yet
        cycle: list[object] = []
        cycle.append(cycle)
        watch = weakref.ref(_Box(cycle))
        gc.collect(0)  # the cycle is alive here, so it is frozen with the rest
        del cycle
        assert watch() is not None  # garbage now, but frozen: not collected
        gc.collect()
        assert watch() is not None
        clock[0] = 60.0
        policy.release_if_due()  # the complete pass reclaims it
        assert watch() is None
        assert gc.get_freeze_count() > 0  # and the survivors are frozen again
    finally:
        gc.enable()


class _Box:
    """A weak-referenceable member of a cycle."""

    def __init__(self, cycle: list[object]) -> None:
        self.cycle = cycle
        cycle.append(self)


async def test_frozen_objects_are_still_freed_by_reference_counting(
    freezer: tuple[SurvivorFreezer, list[float]],
) -> None:
    box = _Box([])
    gone = weakref.ref(box)
    gc.collect()
    assert gc.get_freeze_count() > 0
    box.cycle.clear()  # no cycle left: reference counting alone frees it
    del box
    assert gone() is None


async def test_closing_restores_the_collector(
    freezer: tuple[SurvivorFreezer, list[float]],
) -> None:
    policy, _ = freezer
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    await policy.close()
    assert gc.get_threshold()[0] == 700
    gc.unfreeze()
    gc.collect()
    assert gc.get_freeze_count() == 0
