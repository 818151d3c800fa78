import pytest

from lwork.media.relay.sharding import merge_lists, merge_statistics, split_ports, worker_for


def test_worker_choice_is_stable_and_spread() -> None:
    assert worker_for(b"call-1", 4) == worker_for(b"call-1", 4)
    chosen = {worker_for(f"call-{i}".encode(), 4) for i in range(100)}
    assert chosen == {0, 1, 2, 3}


def test_port_slices_are_disjoint_even_pairs() -> None:
    assert split_ports(30001, 30012, 2) == [(30002, 30007), (30008, 30011)]
    slices = split_ports(30000, 40000, 3)
    assert slices[0][0] == 30000 and all(low % 2 == 0 for low, _ in slices)
    assert all(a[1] + 1 == b[0] for a, b in zip(slices, slices[1:], strict=False))
    with pytest.raises(ValueError):
        split_ports(30000, 30003, 3)


def test_merging_lists_and_statistics() -> None:
    assert merge_lists([{b"calls": [b"a", b"b"]}, {b"calls": [b"c"]}, {}], 2) == [b"a", b"b"]
    merged = merge_statistics(
        [
            {b"current": {b"sessionsown": 2, b"note": b"x"}, b"uptime": b"5"},
            {b"current": {b"sessionsown": 3, b"note": b"y"}, b"extra": 1},
        ]
    )
    assert merged == {
        b"current": {b"sessionsown": 5, b"note": b"x"},
        b"uptime": b"5",
        b"extra": 1,
    }
