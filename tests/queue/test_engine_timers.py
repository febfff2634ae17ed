"""promote and reap: the time-driven transitions (time simulated by moving scores)."""

from __future__ import annotations

from queue_helpers import claim_one, expire_lease, make_due, pass_timeout
from redis.asyncio import Redis

from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys


async def test_promote_leaves_jobs_that_are_not_due(engine: QueueEngine) -> None:
    enqueued = await engine.enqueue("fn", None, delay_ms=60_000)

    assert await engine.promote() == 0
    assert (await engine.get_job(enqueued.id)).status == "delayed"


async def test_promote_makes_due_jobs_ready(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    enqueued = await engine.enqueue("fn", None, delay_ms=60_000)
    await make_due(redis, engine, enqueued.id)

    assert await engine.promote() == 1

    assert (await engine.get_job(enqueued.id)).status == "queued"
    assert await redis.zscore(pk.delayed, enqueued.id) is None
    assert [j.id for j in await engine.claim("m1", ["fn"], 1)] == [enqueued.id]


async def test_promote_moves_at_most_limit_jobs(engine: QueueEngine, redis: Redis) -> None:
    for i in range(3):
        enqueued = await engine.enqueue("fn", i, delay_ms=60_000)
        await make_due(redis, engine, enqueued.id)

    assert await engine.promote(limit=2) == 2
    assert await engine.promote(limit=2) == 1


async def test_reap_leaves_live_leases_alone(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)

    assert await engine.reap() == []
    assert (await engine.get_job(job.id)).status == "running"


async def test_an_expired_lease_is_retried_at_once(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, max_attempts=3)
    job = await claim_one(engine)
    await expire_lease(redis, engine, job.id)

    assert await engine.reap() == [(job.id, "queued")]

    record = await engine.get_job(job.id)
    assert (record.status, record.attempt) == ("queued", 1)
    assert record.error is not None and record.error.type == "LeaseExpired"
    assert await redis.smembers(pk.machine_jobs("m1")) == set()
    assert (await claim_one(engine, machine="m2")).attempt == 2


async def test_a_job_past_its_timeout_is_retried_with_backoff(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, max_attempts=3, timeout_ms=1000)
    job = await claim_one(engine)
    await pass_timeout(redis, engine, job.id)

    assert await engine.reap() == [(job.id, "delayed")]

    record = await engine.get_job(job.id)
    assert record.error is not None and record.error.type == "JobTimeout"
    assert await redis.zscore(pk.delayed, job.id) == record.scheduled_at


async def test_an_expired_lease_on_the_last_attempt_makes_the_job_dead(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.enqueue("fn", None, max_attempts=1)
    job = await claim_one(engine)
    await expire_lease(redis, engine, job.id)

    assert await engine.reap() == [(job.id, "dead")]
