"""cancel and release."""

from __future__ import annotations

import pytest
from queue_helpers import claim_one, expire_lease
from redis.asyncio import Redis

from tether.errors import InvalidTransition, LeaseNotHeld, NotFound
from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys
from tether.queue.records import ErrorInfo


async def test_a_queued_job_is_cancelled_at_once(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    enqueued = await engine.enqueue("fn", None)

    assert await engine.cancel(enqueued.id, "not needed") == "cancelled"

    record = await engine.get_job(enqueued.id)
    assert record.status == "cancelled" and record.finished_at is not None
    assert record.error is not None and record.error.message == "not needed"
    assert await engine.queue_depth("fn") == 0


async def test_a_delayed_job_is_cancelled_at_once(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    enqueued = await engine.enqueue("fn", None, delay_ms=60_000)

    assert await engine.cancel(enqueued.id) == "cancelled"

    assert await redis.zscore(pk.delayed, enqueued.id) is None
    assert (await engine.get_job(enqueued.id)).status == "cancelled"


async def test_cancelling_a_running_job_requests_it_and_keeps_it_running(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)

    assert await engine.cancel(job.id) == "cancelling"

    record = await engine.get_job(job.id)
    assert (record.status, record.cancel_requested) == ("running", True)


async def test_a_requested_cancellation_ends_the_job_when_its_machine_reports_failure(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", None, max_attempts=5)
    job = await claim_one(engine)
    await engine.cancel(job.id)
    assert (await engine.heartbeat("m1")).cancelled == [job.id]

    status = await engine.fail(
        job.id, job.token, ErrorInfo(type="Cancelled", message="x"), machine=job.machine
    )

    assert status == "cancelled"
    assert (await engine.heartbeat("m1")).cancelled == []


async def test_a_requested_cancellation_ends_the_job_when_its_machine_releases_it(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await engine.cancel(job.id)

    assert await engine.release(job.id, job.token, machine=job.machine) == "cancelled"
    assert await engine.queue_depth("fn") == 0


async def test_a_requested_cancellation_ends_the_job_when_its_lease_expires(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await engine.cancel(job.id)
    await expire_lease(redis, engine, job.id)

    assert await engine.reap() == [(job.id, "cancelled")]


async def test_a_job_that_completes_after_cancellation_was_requested_keeps_its_result(
    engine: QueueEngine,
) -> None:
    # The work is done: committing its result is better than throwing it away.
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await engine.cancel(job.id)

    await engine.complete(job.id, job.token, "done anyway", machine=job.machine)

    assert (await engine.get_job(job.id)).status == "completed"


async def test_a_finished_job_cannot_be_cancelled(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await engine.complete(job.id, job.token, None, machine=job.machine)

    with pytest.raises(InvalidTransition) as info:
        await engine.cancel(job.id)
    assert info.value.details["status"] == "completed"


async def test_cancelling_an_unknown_job_is_not_found(engine: QueueEngine) -> None:
    with pytest.raises(NotFound):
        await engine.cancel("nope")


async def test_a_released_job_is_ready_again_and_the_attempt_does_not_count(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, max_attempts=1)
    job = await claim_one(engine)

    assert await engine.release(job.id, job.token, machine=job.machine) == "queued"

    record = await engine.get_job(job.id)
    assert (record.status, record.attempt) == ("queued", 0)
    assert await redis.zscore(pk.leases, job.id) is None
    assert (await claim_one(engine, machine="m2")).attempt == 1


async def test_release_with_a_stale_token_is_rejected(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)

    with pytest.raises(LeaseNotHeld):
        await engine.release(job.id, "0", machine=job.machine)
    assert (await engine.get_job(job.id)).status == "running"


async def test_release_many_judges_each_lease_on_its_own(engine: QueueEngine) -> None:
    first = await engine.enqueue("fn", 1)
    second = await engine.enqueue("fn", 2)
    a, b = await engine.claim("m1", ["fn"], 2)

    verdicts = await engine.release_many(
        [(a.id, a.token), (b.id, "stale"), ("nope", "1")], machine=a.machine
    )

    assert [(v.job_id, v.accepted, v.reason) for v in verdicts] == [
        (first.id, True, None),
        (second.id, False, "lease_not_held"),
        ("nope", False, "not_found"),
    ]
    assert (await engine.get_job(first.id)).status == "queued"
    assert (await engine.get_job(second.id)).status == "running"
