"""Prometheus metrics of one API process, in the text exposition format (version 0.0.4).

Counters live in this process (each replica is scraped on its own, as Prometheus
expects); gauges of shared state (queue depths, live machines) are read from Redis when
scraped. Written by hand: a handful of dict increments on the hot path, no dependency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tether.api.notify import Notifier
from tether.api.registry import FunctionRegistry
from tether.queue.engine import QueueEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()  # method, route, status
        self.jobs_enqueued = 0
        self.jobs_handed_off = 0  # claimed for a waiting poll with their enqueue
        self.jobs_completed = 0
        self.jobs_failed = 0  # failed attempts (retried or not)
        self.results_rejected = 0  # stale tokens, unknown jobs

    def count_request(self, method: str, route: str, status: int) -> None:
        self.requests[(method, route, status)] += 1

    async def render(
        self, engine: QueueEngine, registry: FunctionRegistry, notifier: Notifier
    ) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {value:g}")

        metric(
            "tether_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
            [
                (_labels((("method", m), ("route", r), ("status", str(s)))), n)
                for (m, r, s), n in sorted(self.requests.items())
            ],
        )
        metric(
            "tether_jobs_enqueued_total",
            "counter",
            "Jobs created through this process.",
            [("", self.jobs_enqueued)],
        )
        metric(
            "tether_jobs_handed_off_total",
            "counter",
            "Jobs claimed for a waiting long poll of this process in the same round trip "
            "as their enqueue.",
            [("", self.jobs_handed_off)],
        )
        metric(
            "tether_jobs_completed_total",
            "counter",
            "Results committed through this process.",
            [("", self.jobs_completed)],
        )
        metric(
            "tether_jobs_failed_total",
            "counter",
            "Failed attempts reported through this process (retried or final).",
            [("", self.jobs_failed)],
        )
        metric(
            "tether_results_rejected_total",
            "counter",
            "Reported results rejected (stale fencing token or unknown job).",
            [("", self.results_rejected)],
        )
        metric(
            "tether_long_polls_waiting",
            "gauge",
            "Long polls waiting for jobs in this process.",
            [("", notifier.waiting_polls)],
        )
        metric(
            "tether_job_waits_waiting",
            "gauge",
            "Requests waiting for a job to finish in this process (GET or POST ?wait).",
            [("", notifier.waiting_jobs)],
        )
        metric(
            "tether_notify_connected",
            "gauge",
            "1 if this process's notification subscription is live.",
            [("", 1 if notifier.connected else 0)],
        )
        up = 1
        depths: list[tuple[str, float]] = []
        machines = 0
        try:
            functions = await registry.all()
            machines = int(await engine.redis.zcard(engine.keys.partition(0).machines))
            queued = await engine.queue_depths([fn.name for fn in functions])
            for fn, depth in zip(functions, queued, strict=True):
                depths.append((_labels((("function", fn.name),)), depth))
        except Exception:  # a scrape reports Redis as down, it never fails
            up = 0
        metric(
            "tether_queue_depth",
            "gauge",
            "Ready jobs waiting for a machine, by function.",
            depths,
        )
        metric(
            "tether_machines_live", "gauge", "Machines with a recent heartbeat.", [("", machines)]
        )
        metric("tether_redis_up", "gauge", "1 if Redis answered this scrape.", [("", up)])
        return "\n".join(out) + "\n"
