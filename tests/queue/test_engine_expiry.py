"""Job expiry: a job given ``expires`` that has not started by then ends ``expired``,
ended by the orchestrator's pass (lua/expire.lua) or by the claim that would have leased
it, never handed out. Jobs without ``expires`` write nothing for it."""

from __future__ import annotations

import asyncio

import pytest
from queue_helpers import claim_one, job_hash, make_due, pass_expiry
from redis.asyncio import Redis

from tether.errors import ValidationFailed
from tether.limits import MAX_EXPIRES
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import PartitionKeys
from tether.queue.records import ErrorInfo

HOUR_MS = 3_600_000


async def test_a_job_given_expires_carries_its_expiry_and_an_entry_in_the_expiry_zset(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)

    record = await engine.get_job(job.id)
    assert record.expires_at is not None and record.enqueued_at is not None
    assert record.expires_at - record.enqueued_at == HOUR_MS
    assert await redis.zscore(pk.expiring, job.id) == record.expires_at


async def test_a_job_without_expires_writes_no_expiry_field_and_no_zset_entry(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1)

    assert "expires_at" not in await job_hash(redis, engine, job.id)
    assert not await redis.exists(pk.expiring)


async def test_a_queued_job_past_its_expiry_is_expired_by_the_pass(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)
    await pass_expiry(redis, engine, job.id)

    assert await engine.expire() == [job.id]

    record = await engine.get_job(job.id)
    assert record.status == "expired" and record.finished_at is not None
    assert record.error is not None and record.error.type == "Expired"
    assert await engine.queue_depth("fn") == 0
    assert not await redis.exists(pk.expiring)
    assert await redis.pttl(pk.job(job.id)) > 0, "an ended job keeps its retention TTL"


async def test_a_delayed_job_past_its_expiry_is_expired_and_leaves_the_delayed_zset(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, delay_ms=2 * HOUR_MS, expires_ms=HOUR_MS)
    await pass_expiry(redis, engine, job.id)

    assert await engine.expire() == [job.id]

    assert (await engine.get_job(job.id)).status == "expired"
    assert await redis.zscore(pk.delayed, job.id) is None


async def test_the_pass_leaves_a_job_whose_expiry_has_not_come(
    engine: QueueEngine,
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)

    assert await engine.expire() == []
    assert (await engine.get_job(job.id)).status == "queued"


async def test_the_claim_never_hands_out_a_job_past_its_expiry(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    stale = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)
    fresh = await engine.enqueue("fn", 2)
    await pass_expiry(redis, engine, stale.id)

    claimed = await engine.claim("m1", ["fn"], 2)

    assert [j.id for j in claimed] == [fresh.id]
    assert (await engine.get_job(stale.id)).status == "expired"
    assert not await redis.exists(pk.expiring)


async def test_a_job_claimed_before_its_expiry_runs_and_leaves_the_expiry_zset(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)

    claimed = await claim_one(engine)

    assert claimed.id == job.id
    assert not await redis.exists(pk.expiring)


async def test_a_job_that_started_is_not_expired_when_its_retry_waits_past_the_expiry(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS, max_attempts=3)
    first = await claim_one(engine)
    await engine.fail(first.id, first.token, ErrorInfo(type="E", message="x"), machine="m1")
    await redis.hset(pk.job(job.id), "expires_at", 1)
    await redis.zadd(pk.expiring, {job.id: 1})

    assert await engine.expire() == []
    assert (await engine.get_job(job.id)).status == "delayed"
    await make_due(redis, engine, job.id)
    await engine.promote()
    again = await claim_one(engine)
    assert (again.id, again.attempt) == (job.id, 2)


async def test_an_expiry_already_past_creates_the_job_expired(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=-5000)

    assert (job.status, job.created) == ("expired", True)
    record = await engine.get_job(job.id)
    assert record.finished_at is not None and record.error is not None
    assert await engine.queue_depth("fn") == 0
    assert not await redis.exists(pk.expiring)
    assert await redis.pttl(pk.job(job.id)) > 0


async def test_a_job_created_expired_keeps_its_tags_for_listings(engine: QueueEngine) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=0, tags={"team": "a"})

    listed, _ = await engine.list_jobs(tags={"team": "a"})

    assert [r.id for r in listed] == [job.id]


async def test_the_same_key_answers_with_a_job_created_expired(engine: QueueEngine) -> None:
    first = await engine.enqueue("fn", 1, idempotency_key="late", expires_ms=0)
    again = await engine.enqueue("fn", 1, idempotency_key="late", expires_ms=0)

    assert (again.id, again.status, again.created) == (first.id, "expired", False)


async def test_a_cancelled_job_is_left_alone_when_its_expiry_comes(
    engine: QueueEngine, redis: Redis
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)
    await engine.cancel(job.id)
    await pass_expiry(redis, engine, job.id)

    assert await engine.expire() == []
    assert (await engine.get_job(job.id)).status == "cancelled"


async def test_expiring_tells_the_listeners_that_the_job_ended(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)
    await pass_expiry(redis, engine, job.id)
    pubsub = redis.pubsub()
    await pubsub.subscribe(pk.channel)
    await pubsub.get_message(timeout=1)  # the subscription's confirmation

    await engine.expire()

    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    await pubsub.aclose()
    assert message is not None and message["data"] == f"j:{job.id}"


async def test_the_pass_ends_at_most_its_batch_and_the_next_pass_the_rest(
    engine: QueueEngine, redis: Redis
) -> None:
    jobs = [await engine.enqueue("fn", i, expires_ms=HOUR_MS) for i in range(5)]
    for job in jobs:
        await pass_expiry(redis, engine, job.id)

    first = await engine.expire(limit=3)
    rest = await engine.expire(limit=3)

    assert (len(first), len(rest)) == (3, 2)
    assert set(first + rest) == {j.id for j in jobs}


@pytest.mark.parametrize("value", [1.5, "60", True, (MAX_EXPIRES + 1) * 1000])
async def test_an_expiry_that_is_not_a_whole_number_of_ms_in_range_is_refused(
    engine: QueueEngine, value: object
) -> None:
    with pytest.raises(ValidationFailed) as info:
        await engine.enqueue_many([EnqueueRequest("fn", 1, expires_ms=value)])  # type: ignore[arg-type]

    assert info.value.details["field"] == "expires"


async def test_an_orchestrator_pass_expires_due_jobs(engine: QueueEngine, redis: Redis) -> None:
    from tether.orchestrator.loop import Orchestrator

    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)
    await pass_expiry(redis, engine, job.id)

    done = await Orchestrator(engine).tick()

    assert done["expired"] == 1
    assert (await engine.get_job(job.id)).status == "expired"


async def test_racing_passes_expire_a_job_once(engine: QueueEngine, redis: Redis) -> None:
    job = await engine.enqueue("fn", 1, expires_ms=HOUR_MS)
    await pass_expiry(redis, engine, job.id)

    results = await asyncio.gather(engine.expire(), engine.expire(), engine.expire())

    assert sorted(len(r) for r in results) == [0, 0, 1]
