"""Recently ended calls: remembered for ``memory_s``, never more than ``max_entries``."""

from lwork.calls.ended import EndedCalls


def test_an_ended_call_is_remembered_for_memory_s_only() -> None:
    ended = EndedCalls(memory_s=120)
    ended.add("n1@@a", now=1000.0)
    assert ended.ended_recently("n1@@a", 1119.9)
    assert not ended.ended_recently("n1@@a", 1120.0)
    assert not ended.ended_recently("n1@@b", 1000.0)
    ended.prune(1120.0)
    assert len(ended) == 0


def test_memory_is_bounded_by_count_oldest_forgotten_first() -> None:
    ended = EndedCalls(memory_s=120, max_entries=3)
    for n in range(10):
        ended.add(f"n1@@{n}", now=1000.0 + n / 100)
    assert len(ended) == 3
    assert [ended.ended_recently(f"n1@@{n}", 1001.0) for n in (6, 7, 8, 9)] == [
        False, True, True, True,
    ]  # fmt: skip


def test_zero_memory_remembers_nothing() -> None:
    ended = EndedCalls(memory_s=0)
    ended.add("n1@@a", now=1.0)
    assert len(ended) == 0 and not ended.ended_recently("n1@@a", 1.0)
