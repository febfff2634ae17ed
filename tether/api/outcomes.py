"""Finished attempts, measured after the fact: the results handler only notes (job id,
when, status after) in a bounded deque; a background task reads the jobs' records in
batches (one pipelined round trip per batch, ``tether.queue.timings``) and feeds the
per-function counters and histograms of ``Metrics``.

Cost on the results path: one ``time.time()`` per batch and a deque append per result.
Cost in Redis: one HMGET per finished attempt, pipelined, off the request path. A scrape
drains what is pending first, so ``/metrics`` is exact up to the moment it is read.
When more than ``max_pending`` attempts wait (Redis slow or down), the newest are dropped
and counted (``tether_metrics_samples_dropped_total``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from redis import exceptions as redis_exc

from tether.errors import RedisUnavailable
from tether.queue.engine import QueueEngine
from tether.queue.timings import JobTiming, job_timings

log = logging.getLogger("tether.api.outcomes")

# A finished attempt: its job id, the ms its result was reported, the job's status after.
Sample = tuple[str, int, str]


class OutcomeSampler:
    def __init__(
        self,
        observe: Callable[[JobTiming, str], None],
        *,
        max_pending: int = 50_000,
        batch: int = 500,
        delay: float = 0.5,
    ) -> None:
        self._observe = observe
        self._pending: deque[Sample] = deque()
        self._max_pending = max_pending
        self._batch = batch
        self._delay = delay  # seconds a small batch waits for company
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False  # the task waits for company (nothing taken yet)
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, engine: QueueEngine, finished: Iterable[tuple[str, str]]) -> None:
        """Note (job id, status after) of attempts just committed (the hot path)."""
        now = int(time.time() * 1000)
        pending = self._pending
        for job_id, status in finished:
            if len(pending) >= self._max_pending:
                self.dropped += 1
                continue
            pending.append((job_id, now, status))
        if pending and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain_soon(engine))

    async def _drain_soon(self, engine: QueueEngine) -> None:
        try:
            if len(self._pending) < self._batch:
                self._sleeping = True
                try:
                    await asyncio.sleep(self._delay)
                finally:
                    self._sleeping = False
            await self._drain(engine)
        finally:
            self._task = None

    async def _drain(self, engine: QueueEngine) -> None:
        while self._pending:
            n = min(len(self._pending), self._batch)
            batch = [self._pending.popleft() for _ in range(n)]
            try:
                timings = await job_timings(
                    engine.redis, engine.keys, [(job_id, ms) for job_id, ms, _ in batch]
                )
            except (RedisUnavailable, redis_exc.RedisError, OSError) as exc:
                self.dropped += len(batch)
                log.debug("could not read %d finished jobs for metrics: %s", len(batch), exc)
                return
            for (_, _, status), timing in zip(batch, timings, strict=True):
                if timing is not None:
                    self._observe(timing, status)

    async def flush(self, engine: QueueEngine) -> None:
        """Everything pending, measured now (a scrape calls this first)."""
        task = self._task
        if task is not None:
            if self._sleeping:
                task.cancel()  # it holds nothing yet: drain here instead
            await asyncio.wait([task])  # (never raises: a cancel of ours stays ours)
        await self._drain(engine)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
