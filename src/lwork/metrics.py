"""``/metrics``: the node's counters and gauges as JSON (the default) or, for a scraper that
asks for it in ``Accept``, in Prometheus' text or the OpenMetrics format (CONTRACT §11).

Values are read when scraped from the objects that keep them; nothing is registered globally,
so several app instances in one process (the tests) never mix their figures.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lwork.telemetry import Telemetry

Kind = Literal["gauge", "counter"]
METRICS: dict[str, tuple[Kind, str]] = {
    "held_polls": ("gauge", "Long polls this node holds now."),
    "polls_replaced": ("counter", "Held polls ended by a newer poll from the same device."),
    "mailbox_dropped": ("counter", "Events dropped from over-full device mailboxes."),
    "active_calls": ("gauge", "Calls this node holds now."),
    "calls_forwarded": ("counter", "Requests for calls held by another node, sent there."),
    "calls_forward_unanswered": ("counter", "Forwarded call requests no node answered."),
    "relay_restarts": ("counter", "Times the built-in relay child died and was started again."),
    "relay_loss_ratio": (
        "gauge",
        "Mean loss (0..1) of the live call legs the relay measures.",
    ),
    "relay_jitter_ms": ("gauge", "Mean jitter (ms) of the live call legs the relay measures."),
    "cdr_outbox_depth": ("gauge", "Closed call records waiting for the BOSS's webhook."),
    "cdr_outbox_oldest_s": ("gauge", "Seconds the oldest of them has waited."),
    "worker": ("gauge", "Index of the API worker process that answered (http.workers)."),
}


class NodeMetrics(Collector):
    def __init__(
        self, read: Callable[[], dict[str, int | float]], telemetry: Telemetry | None = None
    ) -> None:
        """``read()`` returns the current value of every name in ``METRICS``; ``telemetry``'s
        labelled series are in the Prometheus formats only (the JSON view keeps its flat
        shape)."""
        self._read = read
        self._telemetry = telemetry

    def values(self) -> dict[str, int | float]:
        return self._read()

    def collect(self) -> Iterator[Metric]:
        for name, value in self._read().items():
            kind, help_text = METRICS[name]
            family = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            yield family("lwork_" + name, help_text, value=value)
        if self._telemetry is not None:
            yield from self._telemetry.families()


def exposition(collector: Collector, accept: str) -> tuple[bytes, str] | None:
    """``collector``'s scrape body and its content type, if ``accept`` names a Prometheus
    format."""
    if not prometheus_format(accept):
        return None
    encoder, content_type = choose_encoder(accept)
    return encoder(collector), content_type


def prometheus_format(accept: str) -> bool:
    return "text/plain" in accept or "openmetrics" in accept


Family = dict[str, Any]
"""A metric family as plain data, to cross the bus: name, help, type, unit, samples."""


def families_of(collector: Collector) -> list[Family]:
    return [
        {
            "name": metric.name,
            "help": metric.documentation,
            "type": metric.type,
            "unit": metric.unit,
            # NaN has no JSON spelling (the Redis bus): None stands for it
            "samples": [
                [sample.name, sample.labels, None if math.isnan(sample.value) else sample.value]
                for sample in metric.samples
            ],
        }
        for metric in collector.collect()
    ]


class WorkersMetrics(Collector):
    """The families of every API worker of one machine (``http.workers``) as one scrape, each
    sample labelled with its ``worker``: a scrape through the shared port reaches one worker
    at random, and a scraper must see them all."""

    def __init__(self, parts: Sequence[tuple[int, list[Family]]]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for worker, families in self._parts:
            for family in families:
                metric = merged.get(family["name"])
                if metric is None:
                    metric = merged[family["name"]] = Metric(
                        family["name"], family["help"], family["type"], family["unit"]
                    )
                for name, labels, value in family["samples"]:
                    value = math.nan if value is None else value
                    metric.add_sample(name, {**labels, "worker": str(worker)}, value)
        yield from merged.values()


async def gather_workers(
    own: tuple[int, Collector],
    others: Sequence[int],
    ask: Callable[[int], Awaitable[list[Family] | None]],
) -> WorkersMetrics:
    """This worker's families and those of ``others`` that answered ``ask`` (None: a worker
    that is restarting; its series are absent from this scrape, as from a failed scrape)."""
    answers = await asyncio.gather(*(ask(worker) for worker in others))
    parts = [(own[0], families_of(own[1]))]
    parts += [(worker, found) for worker, found in zip(others, answers, strict=True) if found]
    return WorkersMetrics(parts)
