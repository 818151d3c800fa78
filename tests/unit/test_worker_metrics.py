"""One scrape of several workers' metrics: families merged, every sample labelled."""

from __future__ import annotations

import asyncio
import math

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from lwork.metrics import Family, families_of, gather_workers


class Worker(Collector):
    def __init__(self, held: float, waits: int) -> None:
        self.held, self.waits = held, waits

    def collect(self) -> list[Metric]:
        histogram = HistogramMetricFamily("lwork_wait_seconds", "Waits.", labels=["path"])
        histogram.add_metric(["held"], [("0.1", self.waits), ("+Inf", self.waits)], 0.5)
        return [
            GaugeMetricFamily("lwork_held_polls", "Held polls.", value=self.held),
            histogram,
        ]


def test_every_workers_samples_are_in_one_valid_scrape_labelled_by_worker() -> None:
    answers: dict[int, list[Family] | None] = {
        1: families_of(Worker(7, 2)),
        2: None,  # restarting: left out
        3: families_of(Worker(math.nan, 4)),
    }

    async def ask(worker: int) -> list[Family] | None:
        return answers[worker]

    scrape = asyncio.run(gather_workers((0, Worker(5, 1)), [1, 2, 3], ask))
    text = generate_latest(scrape).decode()
    assert text.count("# TYPE lwork_held_polls gauge") == 1
    families = {family.name: family for family in text_string_to_metric_families(text)}
    held = {s.labels["worker"]: s.value for s in families["lwork_held_polls"].samples}
    assert held["0"] == 5 and held["1"] == 7 and math.isnan(held["3"]) and "2" not in held
    buckets = [
        (s.labels["worker"], s.labels["le"], s.value)
        for s in families["lwork_wait_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert ("1", "0.1", 2) in buckets and ("3", "+Inf", 4) in buckets
    assert all(s.labels["path"] == "held" for s in families["lwork_wait_seconds"].samples)
