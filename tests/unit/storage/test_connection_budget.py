"""The start-up check of a node's PostgreSQL connections against the server's limit."""

from __future__ import annotations

from lwork.storage.connection_budget import connections_per_process, over_budget


def test_a_node_within_the_limit_is_not_told_anything() -> None:
    assert connections_per_process(10) == 30
    assert over_budget(maximum=100, reserved=3, processes=3, pool_size=10) is None  # 90 of 97


def test_a_node_past_the_limit_is_told_its_figures_and_the_pool_size_that_fits() -> None:
    advice = over_budget(maximum=100, reserved=3, processes=6, pool_size=10)
    assert advice is not None
    assert "may open 180 PostgreSQL connections" in advice
    assert "the server allows 97 (max_connections 100 - 3 reserved)" in advice
    # 6 × (2 × 3 + 10) = 96 ≤ 97; 6 × (2 × 4 + 10) = 108 is not.
    assert "lower database.pool_size to 3 or less" in advice


def test_too_many_workers_for_any_pool_size_are_told_so() -> None:
    advice = over_budget(maximum=100, reserved=3, processes=10, pool_size=1)
    assert advice is not None and "run fewer http.workers" in advice
