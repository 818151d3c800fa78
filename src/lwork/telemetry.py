"""The node's labelled counters and latency histograms, kept by the code that sees each thing
happen and read by ``/metrics`` in Prometheus' formats (CONTRACT §11).

Plain dictionaries and lists rather than ``prometheus_client``'s metric objects: an observation
costs a dictionary lookup and a bisection, with no lock, on the status-poll path that runs
thousands of times a second; ``prometheus_client`` is used only to write the exposition. Label
values are always from closed sets (route templates, call kinds, end reasons, SIP codes,
provider names), never from what a client sends, so the series stay bounded.

With ``metrics.enabled = false`` the node keeps a ``SilentTelemetry``: the same series, whose
observations return at once and keep nothing, so the hot paths pay one no-op call each.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; a held long poll lands in the last, ``+Inf`` (held up to ``push.hold_s``)."""
DELIVERY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0)
"""Seconds from an event queued to a long poll answering with it: milliseconds when a poll
is held, up to the push wake-up and reconnection of an app that was asleep."""
SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
"""Seconds from a call's start to the other side ringing (post-dial delay)."""


def _go_float(bound: float) -> str:
    """A bucket's bound as Prometheus writes it (``10.0``, ``0.001``)."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.cells: dict[tuple[str, ...], list[float]] = {}
        """Per label set, a one-element list: a hot path may keep it and add in place."""

    def cell(self, labels: tuple[str, ...]) -> list[float]:
        cell = self.cells.get(labels)
        if cell is None:
            cell = self.cells[labels] = [0.0]
        return cell

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.cell(labels)[0] += amount

    def value(self, *labels: str) -> float:
        cell = self.cells.get(labels)
        return 0.0 if cell is None else cell[0]

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.help, labels=self.labels)
        for labels, cell in sorted(self.cells.items()):
            family.add_metric(labels, cell[0])
        return family


class Histogram:
    def __init__(
        self, name: str, help_text: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_text, labels, buckets
        self.series: dict[tuple[str, ...], list[float]] = {}
        """Per label set: a count per bucket (the last is ``+Inf``), then the sum."""

    def series_of(self, labels: tuple[str, ...]) -> list[float]:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        return series

    def observe(self, value: float, *labels: str) -> None:
        series = self.series_of(labels)
        series[bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def count(self, *labels: str) -> int:
        series = self.series.get(labels)
        return 0 if series is None else int(sum(series[:-1]))

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        bounds = [*(_go_float(bound) for bound in self.buckets), "+Inf"]
        for labels, series in sorted(self.series.items()):
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, series[:-1], strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(list(labels), cumulative, series[-1])
        return family


class SilentCounter(Counter):
    """A counter that keeps nothing (``metrics.enabled = false``)."""

    def cell(self, labels: tuple[str, ...]) -> list[float]:
        return [0.0]  # a hot path that keeps it adds to a list nobody reads

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        return None


class SilentHistogram(Histogram):
    """A histogram that keeps nothing (``metrics.enabled = false``)."""

    def series_of(self, labels: tuple[str, ...]) -> list[float]:
        return [0.0] * (len(self.buckets) + 2)

    def observe(self, value: float, *labels: str) -> None:
        return None


class Telemetry:
    """Every labelled series of a node. One instance per app (the tests run several in one
    process), handed by the composition root to the parts that count."""

    counter: type[Counter] = Counter
    histogram: type[Histogram] = Histogram

    def __init__(self) -> None:
        self.http_seconds = self.histogram(
            "lwork_http_request_duration_seconds",
            "Time to answer an HTTP request, by route (held long polls included).",
            ("route",), HTTP_BUCKETS,
        )  # fmt: skip
        self.http_responses = self.counter(
            "lwork_http_responses", "HTTP answers by route and status code.", ("route", "code")
        )
        self.call_setup_seconds = self.histogram(
            "lwork_call_setup_seconds",
            "From a call's start to the other side ringing (post-dial delay), by call kind.",
            ("kind",), SETUP_BUCKETS,
        )  # fmt: skip
        self.push_delivery_seconds = self.histogram(
            "lwork_push_delivery_seconds",
            "From an event queued for a device to a long poll answering with it: 'held' (a "
            "poll waiting on a node took it), 'next_poll' (read when the app polled again).",
            ("path",), DELIVERY_BUCKETS,
        )  # fmt: skip
        self.calls_ended = self.counter(
            "lwork_calls_ended",
            "Calls released, by kind, end reason and whether any leg was answered.",
            ("kind", "reason", "answered"),
        )
        self.p2p_fallbacks = self.counter(
            "lwork_p2p_fallbacks", "App calls that went on to the callee's phone.", ()
        )
        self.sip_outcomes = self.counter(
            "lwork_sip_invite_outcomes", "Final answers to the trunk INVITEs we sent, by code.",
            ("code",),
        )  # fmt: skip
        self.pushes = self.counter(
            "lwork_pushes", "Pushes sent to providers, by provider and outcome.",
            ("provider", "outcome"),
        )  # fmt: skip
        self.sms = self.counter(
            "lwork_sms", "SMS codes handed to the provider, by outcome.", ("outcome",)
        )
        self.charged = self.counter(
            "lwork_charged", "What calls were charged: cents of coins, or package minutes.",
            ("unit",),
        )  # fmt: skip
        self.orders = self.counter(
            "lwork_orders",
            "Orders entering a state (created, paid, closed, flagged, refunded), by provider.",
            ("provider", "state"),
        )

        self._routes: dict[str, tuple[list[float], dict[int, list[float]]]] = {}

    def http_answered(self, route: str, status: int, seconds: float) -> None:
        """One HTTP answer: the hot path's observation, with the route's series looked up once
        per route rather than by label tuples on every request."""
        found = self._routes.get(route)
        if found is None:
            found = self._routes[route] = (self.http_seconds.series_of((route,)), {})
        series, by_status = found
        series[bisect_left(HTTP_BUCKETS, seconds)] += 1
        series[-1] += seconds
        cell = by_status.get(status)
        if cell is None:
            cell = by_status[status] = self.http_responses.cell((route, str(status)))
        cell[0] += 1

    def families(self) -> Iterator[Metric]:
        for series in vars(self).values():
            if isinstance(series, Counter | Histogram):
                yield series.family()


class SilentTelemetry(Telemetry):
    """``metrics.enabled = false``: every series is there for the code that counts, and
    nothing is kept."""

    counter = SilentCounter
    histogram = SilentHistogram

    def http_answered(self, route: str, status: int, seconds: float) -> None:
        return None


def telemetry_for(enabled: bool) -> Telemetry:
    return Telemetry() if enabled else SilentTelemetry()
