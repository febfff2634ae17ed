"""What the metrics of finished attempts need from job records: function, status and
timestamps, read for a batch of jobs in one pipelined round trip.

The API's ``/metrics`` histograms of queue wait and run time per function are fed from
here (``tether.api.outcomes``), off the request path: results are committed first, their
records read afterwards in batches.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from redis.commands.core import AsyncScript

from tether.queue.keys import Keys
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import script_source


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
    redis: Client, keys: Keys, reported: Sequence[tuple[str, int]]
) -> list[JobTiming | None]:
    """The timing of each (job id, ms when its result was reported); None for a job whose
    record is gone (expired, deleted)."""
    if not reported:
        return []
    by_partition: dict[int, list[int]] = defaultdict(list)  # partition -> indexes
    for index, (job_id, _) in enumerate(reported):
        by_partition[keys.partition_of(job_id)].append(index)
    script = _script(redis)
    rows: list[list[str | None]] = [[] for _ in reported]
    with redis_errors():
        for indexes in by_partition.values():
            job_keys = [keys.for_id(reported[i][0]).job(reported[i][0]) for i in indexes]
            # One script call per partition: a redis-py pipeline of HMGETs costs this
            # process about 16 us per job to pack and parse, this about 1 (bench in the
            # commit: 500 jobs a batch).
            flat = await script(job_keys, [])
            for n, i in enumerate(indexes):
                rows[i] = flat[6 * n : 6 * n + 6]
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


_SCRIPTS: weakref.WeakKeyDictionary[Client, AsyncScript] = weakref.WeakKeyDictionary()


def _script(redis: Client) -> AsyncScript:
    """job_timings.lua registered with ``redis`` (once per client; called by SHA)."""
    script = _SCRIPTS.get(redis)
    if script is None:
        script = _SCRIPTS[redis] = redis.register_script(script_source("job_timings"))
    return script
