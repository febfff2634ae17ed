"""The Python cost of traces per job, in microseconds (median of 7 runs):

    .venv/bin/python bench/trace_cost.py

- with tracing off (no OTEL_TRACES_EXPORTER): what every attempt pays on the worker, the
  job's traceparent for ``ctx["traceparent"]`` (``job_trace``: made up from its id, or
  read from the kept field), and what the API pays to read a traceparent header;
- with the OpenTelemetry SDK on (an exporter that drops spans, after a batch processor
  as tether configures it): the spans of one first attempt, time queued plus attempt.

Redis's side (one more field when a traceparent is given) is bench/redis_instructions.py
--traced.
"""

from __future__ import annotations

import os
import statistics
import timeit
from collections.abc import Callable

from tether import tracing
from tether.protocol import TraceContext, job_trace, job_traceparent, parse_traceparent

RUNS, NUMBER = 7, 20_000
JOB_ID = "9f86d081884c7d659a2feaa0c55ad015"
HEADER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
KEPT = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7").to_field()


def micros(fn: Callable[[], object], number: int = NUMBER) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=RUNS)) / number * 1e6


def spans_of_one_attempt() -> None:
    parent = job_trace(JOB_ID, KEPT)
    attributes = {"tether.job.id": JOB_ID, "tether.function": "noop", "tether.attempt": 1}
    tracing.record("tether.queued noop", parent, attributes, 0.0, 1.0)
    span = tracing.start("tether.attempt noop", parent, attributes, kind="CONSUMER")
    with tracing.current(span):
        tracing.context_of(span)
    span.end()


def main() -> None:
    base = {"redis": None, "client": None, "machine_id": "m1"}

    def attempt_ctx() -> dict[str, object]:
        # What the worker builds for every attempt anyway (executor._ctx without it).
        ctx = dict(base)
        ctx.update(job_id=JOB_ID, job_try=1, max_tries=5, function="noop", parent=None)
        ctx["timeout"] = 300.0
        return ctx

    rows = [
        ("for scale: the rest of an attempt's ctx", micros(attempt_ctx)),
        (
            "off: ctx traceparent, job without a kept context",
            micros(lambda: job_traceparent(JOB_ID, None)),
        ),
        (
            "off: ctx traceparent, job with a kept context",
            micros(lambda: job_traceparent(JOB_ID, KEPT)),
        ),
        ("off: the TRACER is None check", micros(lambda: tracing.TRACER is None)),
        ("API: parse a traceparent header", micros(lambda: parse_traceparent(HEADER))),
    ]
    os.environ.update(OTEL_TRACES_EXPORTER="console", OTEL_BSP_MAX_QUEUE_SIZE="2048")
    try:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    except ImportError:
        print("(opentelemetry-sdk not installed: no 'on' row)")
    else:
        # A console exporter that prints nothing: the cost measured is tether's and the
        # SDK's, not a terminal's.
        ConsoleSpanExporter.export = lambda self, spans: None  # type: ignore[method-assign,assignment,return-value]
        tracing.setup("bench")
        rows.append(
            ("on: spans of a first attempt (queued + attempt)", micros(spans_of_one_attempt, 5_000))
        )
    print("| what (per job) | µs |")
    print("|---|---:|")
    for what, us in rows:
        print(f"| {what} | {us:.2f} |")


if __name__ == "__main__":
    main()
