"""What the metrics of finished attempts need from job records: function, status and
timestamps, read for a batch of jobs in one pipelined round trip.

The API's ``/metrics`` histograms of queue wait and run time per function are fed from
here (``tether.api.outcomes``), off the request path: results are committed first, their
records read afterwards in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from tether.queue.keys import Keys
from tether.queue.redis_errors import redis_errors

_FIELDS = ("fn", "status", "scheduled_at", "enqueued_at", "started_at", "finished_at")


@dataclass(slots=True)
class JobTiming:
    """One job as its record stands: ``waited_ms`` is from ready to leased (the last
    attempt's), ``ran_ms`` from leased to finished (or to ``reported_ms`` for an attempt
    that is to be retried); None where the record lacks a stamp."""

    function: str
    status: str
    waited_ms: int | None
    ran_ms: int | None


def _int(value: str | None) -> int | None:
    return int(value) if value else None


async def job_timings(
    redis: Redis, keys: Keys, reported: Sequence[tuple[str, int]]
) -> list[JobTiming | None]:
    """The timing of each (job id, ms when its result was reported); None for a job whose
    record is gone (expired, deleted)."""
    if not reported:
        return []
    with redis_errors():
        async with redis.pipeline(transaction=False) as pipe:
            for job_id, _ in reported:
                pipe.hmget(keys.for_id(job_id).job(job_id), _FIELDS)
            rows = await pipe.execute()
    out: list[JobTiming | None] = []
    for (_, reported_ms), row in zip(reported, rows, strict=True):
        fn, status, scheduled, enqueued, started, finished = row
        if fn is None:
            out.append(None)
            continue
        ready_at = _int(scheduled) or _int(enqueued)
        started_at, finished_at = _int(started), _int(finished)
        waited = started_at - ready_at if started_at and ready_at else None
        end = finished_at or reported_ms
        ran = end - started_at if started_at else None
        out.append(
            JobTiming(
                function=fn,
                status=status or "",
                waited_ms=max(0, waited) if waited is not None else None,
                ran_ms=max(0, ran) if ran is not None else None,
            )
        )
    return out
