"""``/metrics``: the node's counters and gauges as JSON (the default) or, for a scraper that
asks for it in ``Accept``, in Prometheus' text or the OpenMetrics format (CONTRACT §11).

Values are read when scraped from the objects that keep them; nothing is registered globally,
so several app instances in one process (the tests) never mix their figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

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

    def exposition(self, accept: str) -> tuple[bytes, str] | None:
        """The scrape body and its content type, if ``accept`` names a Prometheus format."""
        if "text/plain" not in accept and "openmetrics" not in accept:
            return None
        encoder, content_type = choose_encoder(accept)
        return encoder(self), content_type
