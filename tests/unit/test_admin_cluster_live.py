"""Merging the nodes' live calls for the console, and reading what a node published."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lwork.admin.cluster_live import merge, parse_snapshot


def row(sid: str, duration: int) -> dict[str, Any]:
    return {"sid": sid, "duration_s": duration, "kind": "p2p"}


def test_rows_of_all_nodes_are_merged_longest_first_each_naming_its_node() -> None:
    own = (2, [row("n1@@a", 5), row("n1@@b", 1)])
    others = [
        {"node": "n2", "total": 1, "calls": [row("n2@@c", 3)]},
        {"node": "n3", "total": 0, "calls": []},
    ]
    total, rows = merge("n1", own, others, cap=500)
    assert total == 3
    assert [(r["sid"], r["node"]) for r in rows] == [
        ("n1@@a", "n1"), ("n2@@c", "n2"), ("n1@@b", "n1"),
    ]  # fmt: skip


def test_the_cap_keeps_the_longest_and_the_total_counts_them_all() -> None:
    own = (600, [row(f"n1@@{i}", i) for i in range(500)])
    others = [
        {"node": "n2", "total": 700, "calls": [row(f"n2@@{i}", 1000 + i) for i in range(500)]}
    ]
    total, rows = merge("n1", own, others, cap=500)
    assert total == 1300 and len(rows) == 500
    assert {r["node"] for r in rows} == {"n2"}


def test_a_stale_key_of_this_node_is_never_counted_twice() -> None:
    own = (1, [row("n1@@a", 5)])
    total, rows = merge("n1", own, [{"node": "n1", "total": 1, "calls": [row("n1@@a", 4)]}], 500)
    assert (total, [r["sid"] for r in rows]) == (1, ["n1@@a"])


def test_a_published_snapshot_is_read_back() -> None:
    body = {"node": "n2", "at": 1.0, "total": 1, "calls": [row("n2@@c", 3)]}
    assert parse_snapshot(json.dumps(body).encode()) == {
        "node": "n2", "total": 1, "calls": [row("n2@@c", 3)],
    }  # fmt: skip


@given(st.one_of(st.none(), st.binary(max_size=200), st.text(max_size=200),
                 st.recursive(st.none() | st.integers() | st.text(max_size=10),
                              lambda c: st.lists(c, max_size=4)
                              | st.dictionaries(st.sampled_from(["node", "total", "calls", "sid"]),
                                                c, max_size=4),
                              max_leaves=20).map(json.dumps)))  # fmt: skip
def test_anything_in_redis_is_a_snapshot_or_nothing(raw: bytes | str | None) -> None:
    found = parse_snapshot(raw)
    if found is not None:
        assert isinstance(found["node"], str) and isinstance(found["total"], int)
        assert all(isinstance(r["sid"], str) for r in found["calls"])
        assert found["total"] >= len(found["calls"])
        merge("n1", (0, []), [found], 500)  # and merging it never fails
