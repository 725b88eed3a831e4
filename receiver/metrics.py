"""What a process counts for `/metrics`, and how it is written out with prometheus-client.

Counting happens on the request path and in the dispatcher, where a prometheus-client metric
would take a lock per update: an endpoint and a subscriber keep plain counters and bucket
lists instead (one event loop updates them), and `render` turns a snapshot of them, taken on
that loop, into the client's metric families at scrape time. The inbox's figures (backlog,
oldest open delivery) are read from the inbox at scrape time, so with PostgreSQL every
process reports the shared inbox's.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

__all__ = [
    "ACK_BUCKETS",
    "DELIVERY_BUCKETS",
    "MAX_EVENT_TYPES",
    "DeliveryMetrics",
    "Histogram",
    "RequestMetrics",
    "Snapshot",
    "render",
]

ACK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds from a request's arrival at the endpoint to its answer."""
DELIVERY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds one delivery attempt (a handler call or a forward) took."""
MAX_EVENT_TYPES = 500
"""Event types counted apart per endpoint; any further ones count as `other` (a type name
comes from a request, and every name would be a time series)."""


class Histogram:
    """Observations in fixed buckets: one list update per observation, no lock."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation of `value`."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def copy(self) -> Histogram:
        """A copy whose figures no longer change."""
        other = Histogram(self.bounds)
        other.counts = list(self.counts)
        other.sum, other.count = self.sum, self.count
        return other

    def cumulative(self) -> list[tuple[str, float]]:
        """`(le, count)` pairs as Prometheus writes a histogram's buckets."""
        pairs: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            total += count
            pairs.append((repr(bound), total))
        pairs.append(("+Inf", self.count))
        return pairs


class RequestMetrics:
    """One endpoint's acknowledgement latency and stored events by type."""

    __slots__ = ("ack", "events", "last_event")

    def __init__(self) -> None:
        self.ack = Histogram(ACK_BUCKETS)
        self.events: dict[str, int] = {}
        self.last_event = 0.0
        """When the last new event was stored (unix time); 0: none yet."""

    def stored(self, event_type: str) -> None:
        """Count a newly stored event of `event_type`."""
        events = self.events
        if event_type not in events and len(events) >= MAX_EVENT_TYPES:
            event_type = "other"
        events[event_type] = events.get(event_type, 0) + 1
        self.last_event = time.time()


class DeliveryMetrics:
    """One subscriber's delivery attempts in this process."""

    __slots__ = ("attempts", "dead", "duration", "retries")

    def __init__(self) -> None:
        self.duration = Histogram(DELIVERY_BUCKETS)
        self.attempts: dict[str, int] = {"done": 0, "retry": 0, "dead": 0}
        """Attempts by outcome: done, retry (failed, to be tried again), dead (failed, final)."""
        self.retries = 0
        self.dead = 0

    def attempted(self, outcome: str, duration: float) -> None:
        """Count one attempt that ended with `outcome` after `duration` seconds."""
        self.duration.observe(duration)
        self.attempts[outcome] = self.attempts.get(outcome, 0) + 1
        if outcome == "retry":
            self.retries += 1
        elif outcome == "dead":
            self.dead += 1

    def copy(self) -> DeliveryMetrics:
        """A copy whose figures no longer change."""
        other = DeliveryMetrics()
        other.duration = self.duration.copy()
        other.attempts = dict(self.attempts)
        other.retries, other.dead = self.retries, self.dead
        return other


@dataclass
class EndpointFigures:
    """One endpoint's figures at the time of a scrape."""

    name: str
    source: str
    requests: Mapping[str, int]
    ack: Histogram
    events: Mapping[str, int]
    last_event: float


@dataclass
class Snapshot:
    """Everything a scrape reports, copied on the event loop that updates it."""

    version: str
    engine: str
    inbox_kind: str
    endpoints: list[EndpointFigures] = field(default_factory=list)
    deliveries: dict[str, DeliveryMetrics] = field(default_factory=dict)
    dispatching: bool = False
    certificate_expiry: float | None = None
    inbox_up: bool = True
    backlog: dict[str, dict[str, int]] = field(default_factory=dict)
    """Deliveries by subscriber and state, as the inbox has them."""
    oldest_open_age: dict[str, float] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    """Each `/readyz` check's result (its last, at most a second old)."""


def _families(snap: Snapshot) -> Iterator[Metric]:
    info = InfoMetricFamily("receiver_build", "Version of the receiver and what it runs on.")
    info.add_metric(
        [],
        {
            "version": snap.version,
            "python": platform.python_version(),
            "engine": snap.engine,
            "inbox": snap.inbox_kind,
        },
    )
    yield info
    requests = CounterMetricFamily(
        "receiver_requests",
        "Webhook requests answered, by endpoint and outcome.",
        labels=["endpoint", "outcome"],
    )
    ack = HistogramMetricFamily(
        "receiver_ack_seconds",
        "Seconds from a webhook request's arrival to its 200 (stored or duplicate).",
        labels=["endpoint"],
    )
    events = CounterMetricFamily(
        "receiver_events",
        "New events stored (duplicates excluded), by endpoint, source and type.",
        labels=["endpoint", "source", "type"],
    )
    last = GaugeMetricFamily(
        "receiver_last_event_timestamp_seconds",
        "When this process last stored a new event of the endpoint (unix time; absent until "
        "it has).",
        labels=["endpoint"],
    )
    for endpoint in snap.endpoints:
        for outcome, count in endpoint.requests.items():
            requests.add_metric([endpoint.name, outcome], count)
        ack.add_metric([endpoint.name], endpoint.ack.cumulative(), endpoint.ack.sum)
        for event_type, count in sorted(endpoint.events.items()):
            events.add_metric([endpoint.name, endpoint.source, event_type], count)
        if endpoint.last_event:  # none yet since start: absent, not 1970
            last.add_metric([endpoint.name], endpoint.last_event)
    if snap.endpoints:
        yield from (requests, ack, events, last)
    if snap.ready:
        ready = GaugeMetricFamily(
            "receiver_ready",
            "1 while a /readyz check passes (process, inbox, dispatcher, certificate).",
            labels=["check"],
        )
        for check, ok in snap.ready.items():
            ready.add_metric([check], int(ok))
        yield ready
    yield GaugeMetricFamily(
        "receiver_dispatching",
        "1 while this process dispatches deliveries to subscribers.",
        value=int(snap.dispatching),
    )
    attempts = CounterMetricFamily(
        "receiver_delivery_attempts",
        "Delivery attempts made by this process, by subscriber and outcome "
        "(done; retry: failed, tried again later; dead: failed for good).",
        labels=["subscriber", "outcome"],
    )
    retries = CounterMetricFamily(
        "receiver_delivery_retries",
        "Failed attempts this process scheduled to be tried again, by subscriber.",
        labels=["subscriber"],
    )
    dead = CounterMetricFamily(
        "receiver_dead_letters",
        "Deliveries this process made dead letters, by subscriber.",
        labels=["subscriber"],
    )
    duration = HistogramMetricFamily(
        "receiver_delivery_seconds",
        "Seconds one delivery attempt (a handler call or a forward) took, by subscriber.",
        labels=["subscriber"],
    )
    for name, figures in sorted(snap.deliveries.items()):
        for outcome, count in figures.attempts.items():
            attempts.add_metric([name, outcome], count)
        retries.add_metric([name], figures.retries)
        dead.add_metric([name], figures.dead)
        duration.add_metric([name], figures.duration.cumulative(), figures.duration.sum)
    yield from (attempts, retries, dead, duration)
    yield GaugeMetricFamily(
        "receiver_inbox_up",
        "1 if the inbox answered this scrape's questions (the backlog figures are from it).",
        value=int(snap.inbox_up),
    )
    if snap.inbox_up:
        backlog = GaugeMetricFamily(
            "receiver_inbox_deliveries",
            "Deliveries in the inbox, by subscriber and state (shared by every process of a "
            "PostgreSQL inbox).",
            labels=["subscriber", "state"],
        )
        for name, states in sorted(snap.backlog.items()):
            for state in ("pending", "in_progress", "dead", "done", "discarded"):
                backlog.add_metric([name, state], states.get(state, 0))
        yield backlog
        oldest = GaugeMetricFamily(
            "receiver_inbox_oldest_open_seconds",
            "Age of each subscriber's oldest delivery not yet done or dead (0: none open).",
            labels=["subscriber"],
        )
        for name in sorted(snap.backlog):
            oldest.add_metric([name], snap.oldest_open_age.get(name, 0.0))
        yield oldest
    if snap.certificate_expiry is not None:
        yield GaugeMetricFamily(
            "receiver_certificate_expiry_timestamp_seconds",
            "When the TLS certificate in use expires (unix time).",
            value=snap.certificate_expiry,
        )


class _Fixed:
    """A collector that yields families built beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def render(snap: Snapshot) -> bytes:
    """`snap` in Prometheus' text format (prometheus-client's own writer)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(_families(snap))))
    return generate_latest(registry)
