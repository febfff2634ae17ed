"""Prometheus metrics of one API process, exposed with ``prometheus_client``.

Each replica is scraped on its own (as Prometheus expects): counters and histograms live
in this process, gauges of shared state (queue depths, live machines) are read from Redis
when scraped. Sum counters and histogram buckets over replicas (``sum without
(instance)``); shared-state gauges are the same on every replica (use ``max``).

Hot-path cost: request counts and job counters stay plain integer increments, exposed by
a collector at scrape time; histograms observe through label children cached here (no
``labels()`` lookup per request). Finished attempts are measured off the request path
(``outcomes.py``).

Label cardinality is bounded: ``function`` takes the first ``max_functions`` names this
process sees (names come from the function registry) and folds the rest into ``other``;
``method`` folds anything but the standard methods into ``other``; ``route`` is a route
template (``unmatched`` for paths no route serves), ``status`` an HTTP status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.api.notify import Notifier
from tether.api.outcomes import OutcomeSampler
from tether.api.registry import FunctionRegistry
from tether.queue.engine import QueueEngine
from tether.queue.timings import JobTiming

# No `*_created` series: they double the series of every counter and histogram, and
# nothing here reads them (a process-wide switch of prometheus_client).
disable_created_metrics()  # type: ignore[no-untyped-call]

# prometheus_client writes the text format 0.0.4 (generate_latest).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

MAX_FUNCTION_LABELS = 200
OTHER = "other"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_OUTCOMES = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}
# Seconds: queue waits and run times span milliseconds to hours.
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Seconds to the start of the response (long polls wait up to their `wait`).
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30)
LATENCY_BATCH = 1024
# Where the latency middleware leaves a request's start (read when the response starts).
SCOPE_START = "tether.started"


class LabelCap:
    """The first ``limit`` distinct values pass; every later one is ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        return OTHER


class Metrics:
    def __init__(self, max_functions: int = MAX_FUNCTION_LABELS) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()  # method, route, status
        self.jobs_enqueued = 0
        self.jobs_handed_off = 0  # claimed for a waiting poll with their enqueue
        self.jobs_completed = 0
        self.jobs_failed = 0  # failed attempts (retried or not)
        self.results_rejected = 0  # stale tokens, unknown jobs
        self.function_label = LabelCap(max_functions)
        self.registry = CollectorRegistry(auto_describe=False)
        self.finished = PromCounter(
            "tether_jobs_finished",
            "Attempts whose result this process committed, by function and outcome "
            "(completed, failed, cancelled, retried).",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "tether_job_queue_wait_seconds",
            "From ready to leased, per finished attempt, by function.",
            ["function"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "tether_job_run_seconds",
            "From leased to result, per finished attempt, by function.",
            ["function"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "tether_http_request_duration_seconds",
            "From request to the start of its response, by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self._latency_children: dict[tuple[str, str], Any] = {}
        self._latencies: list[tuple[Any, float]] = []  # (histogram child, seconds)
        self.outcomes = OutcomeSampler(self._observe_timing)
        # Set by whoever serves /v1/events: () -> (clients, events dropped).
        self.event_stats: Callable[[], tuple[int, int]] | None = None
        self._shared: list[Metric] = []  # gauges read from Redis by the last render
        self.registry.register(_Collector(self))

    # -- the hot path ------------------------------------------------------------------

    def count_request(self, method: str, route: str, status: int) -> None:
        if method not in _METHODS:
            method = OTHER
        self.requests[(method, route, status)] += 1

    def observe_latency(self, scope: Any, route: str) -> None:
        """The time since the latency middleware saw the request (if it did)."""
        started = scope.get(SCOPE_START)
        if started is None:
            return
        method = scope.get("method", "")
        if method not in _METHODS:
            method = OTHER
        child = self._latency_children.get((method, route))
        if child is None:
            child = self._latency_children[(method, route)] = self.latency.labels(method, route)
        # Observed in batches (at a scrape, or every LATENCY_BATCH requests): a
        # prometheus_client observation takes ~4 us (a lock per value), an append ~0.1.
        pending = self._latencies
        pending.append((child, perf_counter() - started))
        if len(pending) >= LATENCY_BATCH:
            self._observe_latencies()

    def _observe_latencies(self) -> None:
        pending, self._latencies = self._latencies, []
        for child, seconds in pending:
            child.observe(seconds)

    def _observe_timing(self, timing: JobTiming, status: str) -> None:
        fn = self.function_label(timing.function)
        self.finished.labels(fn, _OUTCOMES.get(status, "retried")).inc()
        if timing.waited_ms is not None:
            self.queue_wait.labels(fn).observe(timing.waited_ms / 1000)
        if timing.ran_ms is not None:
            self.run_time.labels(fn).observe(timing.ran_ms / 1000)

    # -- a scrape ----------------------------------------------------------------------

    async def render(
        self, engine: QueueEngine, registry: FunctionRegistry, notifier: Notifier
    ) -> str:
        await self.outcomes.flush(engine)
        self._observe_latencies()
        up = 1
        depth: dict[str, float] = {}
        machines = 0
        try:
            functions = await registry.all()
            machines = int(await engine.redis.zcard(engine.keys.partition(0).machines))
            queued = await engine.queue_depths([fn.name for fn in functions])
            for fn, n in zip(functions, queued, strict=True):
                label = self.function_label(fn.name)
                depth[label] = depth.get(label, 0) + n
        except Exception:  # a scrape reports Redis as down, it never fails
            up = 0
        shared: list[Metric] = []
        g = GaugeMetricFamily(
            "tether_queue_depth",
            "Ready jobs waiting for a machine, by function.",
            labels=["function"],
        )
        for label, count in sorted(depth.items()):
            g.add_metric([label], count)
        shared.append(g)
        shared.append(
            GaugeMetricFamily(
                "tether_machines_live", "Machines with a recent heartbeat.", value=machines
            )
        )
        shared.append(GaugeMetricFamily("tether_redis_up", "1 if Redis answered this scrape.", up))
        polls = [
            ("tether_long_polls_waiting", "Long polls waiting for jobs in this process.",
             notifier.waiting_polls),
            ("tether_long_polls_parked", "Long polls of this process parked in their wait "
             "(not claiming right now).", notifier.parked_polls),
            ("tether_job_waits_waiting", "Requests waiting for a job to finish in this process "
             "(GET or POST ?wait).", notifier.waiting_jobs),
            ("tether_notify_connected", "1 if this process's notification subscription is live.",
             1 if notifier.connected else 0),
        ]  # fmt: skip
        shared.extend(GaugeMetricFamily(n, h, value=v) for n, h, v in polls)
        self._shared = shared
        return generate_latest(self.registry).decode()


class _Collector(Collector):
    """The plain counters and the gauges of the last render, as metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        requests = CounterMetricFamily(
            "tether_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(m.requests.items()):
            requests.add_metric([method, route, str(status)], n)
        yield requests
        plain = [
            ("tether_jobs_enqueued", "Jobs created through this process.", m.jobs_enqueued),
            ("tether_jobs_handed_off", "Jobs claimed for a waiting long poll of this process "
             "in the same round trip as their enqueue.", m.jobs_handed_off),
            ("tether_jobs_completed", "Results committed through this process.",
             m.jobs_completed),
            ("tether_jobs_failed", "Failed attempts reported through this process (retried "
             "or final).", m.jobs_failed),
            ("tether_results_rejected", "Reported results rejected (stale fencing token or "
             "unknown job).", m.results_rejected),
            ("tether_metrics_samples_dropped", "Finished attempts left out of the per-function "
             "metrics (too many pending, or Redis failed to answer).", m.outcomes.dropped),
        ]  # fmt: skip
        for name, help_, value in plain:
            yield CounterMetricFamily(name, help_, value=value)
        clients, dropped = m.event_stats() if m.event_stats else (0, 0)
        yield GaugeMetricFamily(
            "tether_event_streams", "Clients reading GET /v1/events from this process.", clients
        )
        yield CounterMetricFamily(
            "tether_events_dropped",
            "Events not delivered to a /v1/events client whose queue was full.",
            value=dropped,
        )
        yield from m._shared
