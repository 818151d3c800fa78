"""The survivor freezer against the real collector of this process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lwork.gcpolicy import SurvivorFreezer


@pytest.fixture
def clean_gc() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_and_released_when_due(clean_gc: None) -> None:
    clock = [0.0]
    freezer = SurvivorFreezer(release_every_s=60.0, monotonic=lambda: clock[0])
    freezer.check()
    assert gc.get_freeze_count() == 0  # no full collection yet: nothing to freeze
    kept = [[n] for n in range(1000)]  # long-lived, tracked objects
    gc.collect()
    freezer.check()
    frozen = gc.get_freeze_count()
    assert frozen >= len(kept)
    gc.collect(1)  # a young collection is no reason to freeze again
    freezer.check()
    assert gc.get_freeze_count() == frozen
    clock[0] = 60.0
    freezer.check()
    assert gc.get_freeze_count() == 0


def test_frozen_objects_are_still_freed_by_reference_counting(clean_gc: None) -> None:
    import weakref

    class Box:
        pass

    box = Box()
    gone = weakref.ref(box)
    freezer = SurvivorFreezer(release_every_s=0.0, monotonic=lambda: 0.0)
    gc.collect()
    freezer.check()
    assert gc.get_freeze_count() > 0
    del box
    assert gone() is None
