"""What the server counts for ``GET /metrics``: one object per server, one registry each.

Counters and histograms live in memory and are bumped where the numbers are produced
(the runner after a commit, the JSON API dispatcher, the trigger deliverer, the alarm
watcher): nothing on a request's path touches the database for metrics. Gauges that
describe the present (deployments in progress, agents, open long polls) are computed
when Prometheus scrapes, by the sources registered with ``add_live``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

# Whole deployments take seconds to hours; one lifecycle event milliseconds to an hour.
DEPLOYMENT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))
EVENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, float("inf"))

LiveSource = Callable[[], Iterable[Metric]]
M = TypeVar("M", Counter, Histogram)


class _Live(Collector):
    """Gauges computed at scrape time by one source."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source()

    def describe(self) -> list[Metric]:
        return []  # computed at scrape: nothing to check names against in advance


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[object, ...], Counter | Histogram] = {}
        self.deployments_started = self._counter(
            "shipyard_deployments_started",
            "Deployments that started, by compute platform and application.",
            "platform application",
        )
        self.deployments_finished = self._counter(
            "shipyard_deployments_finished",
            "Deployments that reached a terminal status.",
            "platform status application",
        )
        self.deployment_seconds = self._histogram(
            "shipyard_deployment_duration_seconds",
            "From creation to a terminal status.",
            "platform status",
            DEPLOYMENT_BUCKETS,
        )
        self.event_seconds = self._histogram(
            "shipyard_lifecycle_event_duration_seconds",
            "From a lifecycle event's start to its result, per host.",
            "event status",
            EVENT_BUCKETS,
        )
        self.api_requests = self._counter(
            "shipyard_api_requests",
            "JSON requests (API and agent protocol) by operation and result (ok or the error).",
            "operation result",
        )
        self.api_seconds = self._histogram(
            "shipyard_api_request_duration_seconds",
            "Time to answer a JSON request (a long poll's includes its wait).",
            "operation",
            API_BUCKETS,
        )
        self.trigger_deliveries = self._counter(
            "shipyard_trigger_deliveries",
            "Trigger delivery attempts: delivered, retry (failed, tried again), failed (gave up).",
            "result",
        )
        self.alarm_evaluations = self._counter(
            "shipyard_alarm_evaluations",
            "Alarm readings taken for running deployments, by alarm and state.",
            "alarm state",
        )
        self.traffic_weight = Gauge(
            "shipyard_traffic_weight_percent",
            "Traffic routed to the new revision of a running traffic shift.",
            ["deployment", "target"],
            registry=self.registry,
        )
        # deployment id -> targets with a weight series, removed when it finishes
        self._shifting: dict[str, set[str]] = {}

    def _counter(self, name: str, doc: str, labels: str) -> Counter:
        return Counter(name, doc, labels.split(), registry=self.registry)

    def _histogram(self, name: str, doc: str, labels: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, doc, labels.split(), buckets=buckets, registry=self.registry)

    def add_live(self, source: LiveSource) -> None:
        self.registry.register(_Live(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ---- hooks ----------------------------------------------------------------------

    def api_request(self, operation: str, result: str, seconds: float) -> None:
        self._child(self.api_requests, operation, result).inc()
        self._child(self.api_seconds, operation).observe(seconds)

    def deployment_started(self, platform: str, application: str) -> None:
        self.deployments_started.labels(platform, application).inc()

    def deployment_finished(
        self, platform: str, status: str, application: str, seconds: float, deployment_id: str
    ) -> None:
        self.deployments_finished.labels(platform, status, application).inc()
        self.deployment_seconds.labels(platform, status).observe(max(0.0, seconds))
        for target in self._shifting.pop(deployment_id, set()):
            self.traffic_weight.remove(deployment_id, target)

    def event_finished(self, event: str, status: str, seconds: float) -> None:
        self._child(self.event_seconds, event, status).observe(max(0.0, seconds))

    def _child(self, metric: M, *labels: str) -> M:
        """``metric.labels(*labels)``, kept: every agent request and lifecycle event
        bumps one, and ``labels`` costs twice the bump itself. Only for metrics whose
        label values are bounded (operation, event and status names)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return cast(M, child)

    def traffic_shifted(self, deployment_id: str, target: str, weight: int) -> None:
        self._shifting.setdefault(deployment_id, set()).add(target)
        self.traffic_weight.labels(deployment_id, target).set(weight)

    def delivery(self, result: str) -> None:
        self.trigger_deliveries.labels(result).inc()

    def alarm_read(self, alarm: str, state: str) -> None:
        self.alarm_evaluations.labels(alarm, state).inc()
