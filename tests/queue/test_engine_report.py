"""complete / fail: commit an outcome only with the lease's current fencing token."""

from __future__ import annotations

import pytest
from queue_helpers import claim_one, expire_lease, job_hash, make_due, pass_timeout
from redis.asyncio import Redis

from tether.errors import LeaseNotHeld, NotFound
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys
from tether.queue.records import ErrorInfo, Outcome

BOOM = ErrorInfo(type="ValueError", message="boom", traceback="Traceback ...")


async def test_complete_commits_the_result_and_drops_the_lease(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)

    await engine.complete(job.id, job.token, {"answer": 42}, machine=job.machine)

    record = await engine.get_job(job.id)
    assert (record.status, record.result) == ("completed", {"answer": 42})
    assert record.finished_at is not None
    assert await redis.zscore(pk.leases, job.id) is None
    assert await redis.smembers(pk.machine_jobs("m1")) == set()


async def test_stale_token_cannot_complete_a_job(engine: QueueEngine, redis: Redis) -> None:
    await engine.enqueue("fn", None)
    old = await claim_one(engine)
    await expire_lease(redis, engine, old.id)
    await engine.reap()
    new = await claim_one(engine, machine="m2")
    before = await job_hash(redis, engine, old.id)

    with pytest.raises(LeaseNotHeld):
        await engine.complete(old.id, old.token, "late", machine=old.machine)

    assert await job_hash(redis, engine, old.id) == before
    assert before["token"] == new.token


async def test_the_current_token_from_another_machine_commits_nothing(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine, machine="m1")
    before = await job_hash(redis, engine, job.id)

    with pytest.raises(LeaseNotHeld):
        await engine.complete(job.id, job.token, "forged", machine="m2")
    with pytest.raises(LeaseNotHeld):
        await engine.fail(job.id, job.token, BOOM, machine="m2")
    with pytest.raises(LeaseNotHeld):
        await engine.release(job.id, job.token, machine="m2")

    assert await job_hash(redis, engine, job.id) == before
    await engine.complete(job.id, job.token, "real", machine="m1")
    assert (await engine.get_job(job.id)).result == "real"


async def test_stale_token_cannot_fail_a_job(engine: QueueEngine, redis: Redis) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    before = await job_hash(redis, engine, job.id)

    with pytest.raises(LeaseNotHeld):
        await engine.fail(job.id, job.token.split(".")[0] + ".2", BOOM, machine=job.machine)

    assert await job_hash(redis, engine, job.id) == before


async def test_a_finished_job_cannot_be_completed_again(engine: QueueEngine, redis: Redis) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await engine.complete(job.id, job.token, 1, machine=job.machine)
    before = await job_hash(redis, engine, job.id)

    with pytest.raises(LeaseNotHeld) as info:
        await engine.complete(job.id, job.token, 2, machine=job.machine)

    assert info.value.details["status"] == "completed"
    assert await job_hash(redis, engine, job.id) == before


async def test_completing_an_unknown_job_is_not_found(engine: QueueEngine) -> None:
    with pytest.raises(NotFound):
        await engine.complete("nope", "1", None, machine="m1")


async def test_report_judges_each_outcome_of_a_batch_on_its_own(
    engine: QueueEngine,
) -> None:
    for i in range(2):
        await engine.enqueue("fn", i)
    a, b = await engine.claim("m1", ["fn"], 2)

    verdicts = await engine.report(
        [Outcome(a.id, a.token, ok=True, result=1), Outcome(b.id, "999999", ok=True)],
        machine=a.machine,
    )

    assert [(v.accepted, v.status, v.reason) for v in verdicts] == [
        (True, "completed", None),
        (False, "running", "lease_not_held"),
    ]
    assert (await engine.get_job(b.id)).status == "running"


async def test_a_result_over_the_size_limit_fails_the_job_instead(
    redis: Redis, config: QueueConfig
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=config.keys, max_payload_bytes=100))
    await engine.enqueue("fn", None)
    job = await claim_one(engine)

    verdict = (
        await engine.report(
            [Outcome(job.id, job.token, ok=True, result="x" * 500)], machine=job.machine
        )
    )[0]

    record = await engine.get_job(job.id)
    assert (verdict.accepted, record.status) == (True, "failed")
    assert record.error is not None and record.error.type == "PayloadTooLarge"


async def test_fail_stores_the_error_with_its_traceback(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None, max_attempts=1)
    job = await claim_one(engine)

    await engine.fail(job.id, job.token, BOOM, machine=job.machine)

    assert (await engine.get_job(job.id)).error == BOOM


async def test_a_retryable_failure_is_retried_after_a_jittered_exponential_backoff(
    redis: Redis, config: QueueConfig
) -> None:
    engine = QueueEngine(
        redis,
        QueueConfig(keys=config.keys, backoff_ms=1000, backoff_max_ms=3000, job_timelines=True),
    )
    await engine.enqueue("fn", None, max_attempts=10)
    # Equal jitter: attempt n waits between half and all of min(cap, base * 2^(n-1)).
    bounds = [(500, 1000), (1000, 2000), (1500, 3000), (1500, 3000)]
    for attempt, (low, high) in enumerate(bounds, start=1):
        job = await claim_one(engine)
        assert job.attempt == attempt

        assert await engine.fail(job.id, job.token, BOOM, machine=job.machine) == "delayed"

        record = await engine.get_job(job.id)
        assert record.scheduled_at is not None and record.finished_at is None
        delay = int((await engine.timeline(job.id))[-1]["delay_ms"])
        assert low <= delay <= high
        assert record.scheduled_at - delay <= await engine.server_time_ms()
        await make_due(redis, engine, job.id)
        assert await engine.promote() == 1


async def test_a_job_is_dead_when_its_attempts_are_used_up(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None, max_attempts=1)
    job = await claim_one(engine)

    assert await engine.fail(job.id, job.token, BOOM, machine=job.machine) == "dead"

    record = await engine.get_job(job.id)
    assert (record.status, record.attempt) == ("dead", 1)


async def test_a_non_retryable_failure_fails_the_job_at_once(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None, max_attempts=5)
    job = await claim_one(engine)

    assert (
        await engine.fail(job.id, job.token, BOOM, retryable=False, machine=job.machine) == "failed"
    )

    assert (await engine.get_job(job.id)).status == "failed"


async def test_a_job_carrying_its_own_backoff_retries_on_it_not_the_engines(
    redis: Redis, config: QueueConfig
) -> None:
    engine = QueueEngine(
        redis, QueueConfig(keys=config.keys, backoff_ms=60_000, backoff_max_ms=60_000)
    )
    enqueued = await engine.enqueue("fn", None, max_attempts=3)
    pk = engine.keys.for_id(enqueued.id)
    # A run's jobs carry their own backoff fields; stand-alone jobs leave them out.
    await redis.hset(pk.job(enqueued.id), mapping={"backoff_ms": 100, "backoff_max_ms": 100})
    job = await claim_one(engine)
    before = await engine.server_time_ms()

    assert await engine.fail(job.id, job.token, BOOM, machine=job.machine) == "delayed"

    due = await redis.zscore(pk.delayed, job.id)
    assert due is not None and before + 50 <= due <= await engine.server_time_ms() + 100


async def test_a_timed_out_job_retries_on_the_engines_backoff(
    redis: Redis, config: QueueConfig
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=config.keys, backoff_ms=1000, backoff_max_ms=3000))
    await engine.enqueue("fn", None, max_attempts=3, timeout_ms=1000)
    job = await claim_one(engine)
    await pass_timeout(redis, engine, job.id)
    before = await engine.server_time_ms()

    assert await engine.reap() == [(job.id, "delayed")]

    due = await redis.zscore(engine.keys.for_id(job.id).delayed, job.id)
    # Equal jitter over the first attempt's 1,000 ms: between 500 and 1,000 ms ahead.
    assert due is not None and before + 500 <= due <= await engine.server_time_ms() + 1000


async def test_the_old_token_of_a_reaped_and_requeued_job_commits_nothing(
    redis: Redis, engine: QueueEngine
) -> None:
    await engine.enqueue("fn", None, max_attempts=3)
    old = await claim_one(engine)
    await expire_lease(redis, engine, old.id)
    assert await engine.reap() == [(old.id, "queued")]
    before = await job_hash(redis, engine, old.id)

    with pytest.raises(LeaseNotHeld):
        await engine.complete(old.id, old.token, "late", machine=old.machine)
    with pytest.raises(LeaseNotHeld):
        await engine.fail(old.id, old.token, BOOM, machine=old.machine)

    assert await job_hash(redis, engine, old.id) == before
    assert (await claim_one(engine, machine="m2")).token != old.token
