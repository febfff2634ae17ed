"""Prometheus metrics of one API process, exposed with ``prometheus_client``.

Each replica is scraped on its own (as Prometheus expects): counters and histograms live
in this process, gauges of shared state (queue depths, live machines) are read from Redis
when scraped. Sum counters and histogram buckets over replicas (``sum without
(instance)``); shared-state gauges are the same on every replica (use ``max``).

Hot-path cost: counters are plain integer increments and histograms plain bucket counts
(``Histograms``), all written by a collector at scrape time; prometheus_client's own
metric objects take a lock per observation, which at thousands of jobs a second is a
visible share of the API's CPU. Finished attempts are measured off the request path
(``outcomes.py``).

Label cardinality is bounded: ``function`` takes the first ``max_functions`` names this
process sees (names come from the function registry) and folds the rest into ``other``;
``method`` folds anything but the standard methods into ``other``; ``route`` is a route
template (``unmatched`` for paths no route serves), ``status`` an HTTP status.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tether.api.notify import Notifier
from tether.api.outcomes import OutcomeSampler
from tether.api.registry import FunctionRegistry
from tether.queue.engine import QueueEngine
from tether.queue.timings import JobTiming

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


class Histograms:
    """Histograms of one metric by label values, kept as plain bucket counts and written
    by a collector at the scrape: an observation is a bisect and two additions (about
    0.3 us), where a ``prometheus_client.Histogram`` takes a lock per value and a
    ``labels()`` lookup (about 10 us with both: measured in bench/metrics_cost.py)."""

    def __init__(self, name: str, help_: str, labels: list[str], bounds: tuple[float, ...]):
        self.name, self.help, self.labels = name, help_, labels
        self.bounds = bounds
        self._series: dict[tuple[str, ...], list[float]] = {}  # counts..., +Inf, sum

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self.bounds) + 2)
        series[bisect_left(self.bounds, value)] += 1
        series[-1] += value

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        for labels, series in sorted(self._series.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*self.bounds, float("inf")), series, strict=False):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            family.add_metric(list(labels), buckets, sum_value=series[-1])
        return family


class Metrics:
    def __init__(self, max_functions: int = MAX_FUNCTION_LABELS) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()  # method, route, status
        self.jobs_enqueued = 0
        self.jobs_handed_off = 0  # claimed for a waiting poll with their enqueue
        self.jobs_completed = 0
        self.jobs_failed = 0  # failed attempts (retried or not)
        self.results_rejected = 0  # stale tokens, unknown jobs
        # Log lines lost, by reason: "buffer" (a machine's buffer was full), "trimmed"
        # (cut off a job's or run's bounded stream), "rejected" (not the machine's job).
        self.log_lines_dropped: Counter[str] = Counter()
        self.function_label = LabelCap(max_functions)
        self.registry = CollectorRegistry(auto_describe=False)
        # (function, outcome) -> attempts finished
        self.finished: Counter[tuple[str, str]] = Counter()
        self.queue_wait = Histograms(
            "tether_job_queue_wait_seconds",
            "From ready to leased, per finished attempt, by function.",
            ["function"],
            JOB_BUCKETS,
        )
        self.run_time = Histograms(
            "tether_job_run_seconds",
            "From leased to result, per finished attempt, by function.",
            ["function"],
            JOB_BUCKETS,
        )
        self.latency = Histograms(
            "tether_http_request_duration_seconds",
            "From request to the start of its response, by method and route template.",
            ["method", "route"],
            HTTP_BUCKETS,
        )
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
        self.latency.observe((method, route), perf_counter() - started)

    def _observe_timing(self, timing: JobTiming, status: str) -> None:
        fn = self.function_label(timing.function)
        self.finished[(fn, _OUTCOMES.get(status, "retried"))] += 1
        if timing.waited_ms is not None:
            self.queue_wait.observe((fn,), timing.waited_ms / 1000)
        if timing.ran_ms is not None:
            self.run_time.observe((fn,), timing.ran_ms / 1000)

    # -- a scrape ----------------------------------------------------------------------

    async def render(
        self, engine: QueueEngine, registry: FunctionRegistry, notifier: Notifier
    ) -> str:
        await self.outcomes.flush(engine)
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
        finished = CounterMetricFamily(
            "tether_jobs_finished",
            "Attempts whose result this process committed, by function and outcome "
            "(completed, failed, cancelled, retried).",
            labels=["function", "outcome"],
        )
        for (fn, outcome), n in sorted(m.finished.items()):
            finished.add_metric([fn, outcome], n)
        yield finished
        log_dropped = CounterMetricFamily(
            "tether_log_lines_dropped",
            "Log lines of jobs and runs lost, by reason: buffer (a worker's buffer was full), "
            "trimmed (cut off a bounded log stream), rejected (not the reporting machine's job).",
            labels=["reason"],
        )
        for reason in ("buffer", "trimmed", "rejected"):
            log_dropped.add_metric([reason], m.log_lines_dropped[reason])
        yield log_dropped
        for histograms in (m.queue_wait, m.run_time, m.latency):
            yield histograms.family()
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
