"""job_timings: what the per-function metrics read from finished jobs' records, in one
script call per partition."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import Outcome
from tether.queue.timings import job_timings


async def finish_one(engine: QueueEngine, function: str, job_id: str) -> None:
    await engine.enqueue(function, job_id=job_id)
    await asyncio.sleep(0.02)  # queued a while
    [job] = await engine.claim("m1", [function], 1)
    await asyncio.sleep(0.02)  # ran a while
    outcome = Outcome(job.id, job.token, ok=True, result=1)
    [verdict] = await engine.report([outcome], machine="m1")
    assert verdict.accepted


async def test_a_finished_job_has_its_function_wait_and_run_time(engine: QueueEngine) -> None:
    await finish_one(engine, "add", "j1")
    [timing] = await job_timings(engine.redis, engine.keys, [("j1", 0)])
    assert timing is not None
    assert (timing.function, timing.status) == ("add", "completed")
    assert timing.waited_ms is not None and 15 <= timing.waited_ms < 2000
    assert timing.ran_ms is not None and 15 <= timing.ran_ms < 2000


async def test_a_job_whose_record_is_gone_has_no_timing(engine: QueueEngine) -> None:
    await finish_one(engine, "add", "j1")
    timings = await job_timings(engine.redis, engine.keys, [("gone", 0), ("j1", 0)])
    assert timings[0] is None and timings[1] is not None


async def test_an_attempt_still_running_is_timed_to_its_report(engine: QueueEngine) -> None:
    await engine.enqueue("add", job_id="j1")
    await engine.claim("m1", ["add"], 1)
    started = int(await engine.redis.hget(engine.keys.for_id("j1").job("j1"), "started_at"))
    [timing] = await job_timings(engine.redis, engine.keys, [("j1", started + 250)])
    assert timing is not None and timing.ran_ms == 250


async def test_jobs_of_several_partitions_come_back_in_order(redis: Redis) -> None:
    keys = Keys(prefix=f"t{uuid.uuid4().hex[:10]}", partitions=4)
    engine = QueueEngine(redis, QueueConfig(keys=keys))
    ids = [uuid.uuid4().hex for _ in range(8)]
    assert len({keys.partition_of(i) for i in ids}) > 1
    for n, job_id in enumerate(ids):
        await engine.enqueue(f"fn{n}", job_id=job_id)
    timings = await job_timings(redis, keys, [(i, 0) for i in ids])
    assert [t.function if t else None for t in timings] == [f"fn{n}" for n in range(8)]
    await redis.delete(*[keys.for_id(i).job(i) for i in ids])
