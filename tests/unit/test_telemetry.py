"""Histogram buckets are cumulative and inclusive of their bound, as Prometheus reads them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from lwork.metrics import NodeMetrics
from lwork.telemetry import Telemetry


def exposed(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(NodeMetrics(lambda: {}, telemetry))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    telemetry = Telemetry()
    for seconds in (0.001, 0.002, 0.5, 60.0):
        telemetry.http_seconds.observe(seconds, "GET /x")
    series = exposed(telemetry)

    def bucket(le: str) -> float:
        return series[
            ("lwork_http_request_duration_seconds_bucket", (("le", le), ("route", "GET /x")))
        ]

    assert (bucket("0.001"), bucket("0.0025"), bucket("0.5"), bucket("10.0"), bucket("+Inf")) == (
        1, 2, 3, 3, 4,
    )  # fmt: skip
    assert series[("lwork_http_request_duration_seconds_sum", (("route", "GET /x"),))] == 60.503


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_the_count_is_every_observation_and_buckets_never_shrink(values: list[float]) -> None:
    telemetry = Telemetry()
    for v in values:
        telemetry.call_setup_seconds.observe(v, "p2p")
    assert telemetry.call_setup_seconds.count("p2p") == len(values)
    if values:
        family = telemetry.call_setup_seconds.family()
        counts = [s.value for s in family.samples if s.name.endswith("_bucket")]
        assert counts == sorted(counts) and counts[-1] == len(values)
