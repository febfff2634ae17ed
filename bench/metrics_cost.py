"""What /metrics adds to a request, in-process: the latency middleware plus the latency
observation at response start, the note a results batch leaves for the outcome sampler,
and (on a Redis server this script starts) the batched read of finished jobs' records
that feeds the per-function metrics. Prints microseconds per call (best of 5 rounds).

    .venv/bin/python bench/metrics_cost.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tether.api.latency import latency_middleware
from tether.api.metrics import Metrics
from tether.queue.keys import Keys
from tether.queue.timings import JobTiming, job_timings
from tether.redis_server import RedisServer

N = 100_000


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    return None


def best(fn: Any) -> float:
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        rounds.append((time.perf_counter() - t0) / N * 1e6)
    return min(rounds)


async def main() -> None:
    metrics = Metrics()
    timed = latency_middleware(_noop)
    route = "/v1/machines/{machine_id}/heartbeat"

    async def bare() -> None:
        for _ in range(N):
            await _noop({"type": "http", "method": "POST"}, None, None)

    async def with_latency() -> None:
        for _ in range(N):
            scope: dict[str, Any] = {"type": "http", "method": "POST"}
            await timed(scope, None, None)
            metrics.observe_latency(scope, route)

    results = {}
    for name, fn in (("bare call", bare), ("middleware + observe", with_latency)):
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            await fn()
            rounds.append((time.perf_counter() - t0) / N * 1e6)
        results[name] = min(rounds)
    engine: Any = None

    # A task is draining already (as under load): a note is the append and nothing else.
    sampler = metrics.outcomes
    sampler._task = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
    sampler._max_pending = N + 1
    finished = [("job", "completed")]

    def note() -> None:
        for _ in range(N):
            sampler.add(engine, finished)
        sampler._pending.clear()

    results["outcome note (1 result)"] = best(note)
    timing = JobTiming(function="add", status="completed", waited_ms=3, ran_ms=20)

    def observe() -> None:
        for _ in range(N):
            metrics._observe_timing(timing, "completed")

    results["attempt measured (3 metrics)"] = best(observe)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), appendonly=False).start()
        try:
            results.update(await read_cost(server.url))
        finally:
            server.stop()
    for name, us in results.items():
        print(f"{name:28} {us:6.2f} us")
    print(
        f"latency cost per request: {results['middleware + observe'] - results['bare call']:.2f} us"
    )


async def read_cost(url: str, batch: int = 500) -> dict[str, float]:
    """CPU of this process and wall time per job of ``job_timings`` (one batch)."""
    redis = Redis.from_url(url, decode_responses=True)
    keys = Keys(prefix="bench")
    ids = [f"job{i}" for i in range(batch)]
    fields = {"fn": "add", "status": "completed", "enqueued_at": 1, "started_at": 5}
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hset(keys.for_id(job_id).job(job_id), mapping={**fields, "finished_at": 9})
        await pipe.execute()
    wall = cpu = float("inf")
    for _ in range(20):
        t, c = time.perf_counter(), time.process_time()
        await job_timings(redis, keys, [(job_id, 10) for job_id in ids])
        wall = min(wall, (time.perf_counter() - t) / batch * 1e6)
        cpu = min(cpu, (time.process_time() - c) / batch * 1e6)
    await redis.aclose()
    return {"record read, wall": wall, "record read, our CPU": cpu}


if __name__ == "__main__":
    asyncio.run(main())
