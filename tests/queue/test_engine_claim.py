"""claim: lease ready jobs to a machine, with a fresh fencing token and attempt + 1."""

from __future__ import annotations

import re

import pytest
from queue_helpers import job_hash
from redis.asyncio import Redis

from tether.errors import IdempotencyConflict, ValidationFailed
from tether.queue.engine import EnqueueRequest, HandOff, QueueEngine
from tether.queue.keys import PartitionKeys


async def test_claim_hands_out_jobs_oldest_first(engine: QueueEngine) -> None:
    ids = [(await engine.enqueue("fn", i)).id for i in range(3)]

    claimed = await engine.claim("m1", ["fn"], 3)

    assert [j.id for j in claimed] == ids
    assert [j.input for j in claimed] == [0, 1, 2]


async def test_claim_takes_at_most_count_jobs(engine: QueueEngine) -> None:
    for i in range(5):
        await engine.enqueue("fn", i)

    assert len(await engine.claim("m1", ["fn"], 2)) == 2
    assert await engine.queue_depth("fn") == 3


async def test_claim_serves_several_functions_in_one_call(engine: QueueEngine) -> None:
    a = await engine.enqueue("a", None)
    b = await engine.enqueue("b", None)
    await engine.enqueue("c", None)

    claimed = await engine.claim("m1", ["a", "b"], 10)

    assert sorted((j.function, j.id) for j in claimed) == [("a", a.id), ("b", b.id)]
    assert await engine.queue_depth("c") == 1


async def test_claim_of_an_empty_queue_returns_nothing(engine: QueueEngine) -> None:
    assert await engine.claim("m1", ["fn"], 10) == []


async def test_every_claim_gives_a_new_unguessable_fencing_token(engine: QueueEngine) -> None:
    for i in range(3):
        await engine.enqueue("fn", i)
    first = await engine.claim("m1", ["fn"], 2)
    second = await engine.claim("m2", ["fn"], 1)
    await engine.release(first[0].id, first[0].token, machine=first[0].machine)
    again = await engine.claim("m2", ["fn"], 1)

    tokens = [j.token for j in [*first, *second, *again]]
    assert len(set(tokens)) == 4
    # 128 random bits per claim call: no call's tokens tell anything of another's.
    nonces = {token.split(".")[0] for token in tokens}
    assert len(nonces) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", n) for n in nonces)
    assert all(len(token) <= 40 for token in tokens)  # what a result item may carry


async def test_claim_marks_the_job_running_with_attempt_plus_one(
    engine: QueueEngine,
) -> None:
    enqueued = await engine.enqueue("fn", None, max_attempts=3)

    job = (await engine.claim("m1", ["fn"], 1))[0]

    record = await engine.get_job(enqueued.id)
    assert (job.attempt, job.max_attempts) == (1, 3)
    assert (record.status, record.attempt, record.machine) == ("running", 1, "m1")
    assert record.started_at is not None


async def test_claim_sets_a_lease_deadline_one_ttl_ahead(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    enqueued = await engine.enqueue("fn", None)

    await engine.claim("m1", ["fn"], 1)

    record = await engine.get_job(enqueued.id)
    assert record.started_at is not None
    lease_until = record.started_at + engine.config.lease_ttl_ms
    assert await redis.zscore(pk.leases, enqueued.id) == lease_until
    assert await redis.smembers(pk.machine_jobs("m1")) == {enqueued.id}


async def test_claim_records_the_token_the_job_was_leased_with(
    engine: QueueEngine, redis: Redis
) -> None:
    enqueued = await engine.enqueue("fn", None)

    job = (await engine.claim("m1", ["fn"], 1))[0]

    assert (await job_hash(redis, engine, enqueued.id))["token"] == job.token


async def test_claim_skips_cancelled_jobs(engine: QueueEngine) -> None:
    cancelled = await engine.enqueue("fn", 1)
    kept = await engine.enqueue("fn", 2)
    await engine.cancel(cancelled.id)

    claimed = await engine.claim("m1", ["fn"], 10)

    assert [j.id for j in claimed] == [kept.id]


async def test_claim_drops_stream_entries_of_jobs_that_are_not_queued(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    # An entry whose job is no longer queued (e.g. its record expired) is skipped.
    await redis.xadd(pk.ready("fn"), {"id": "ghost"})
    real = await engine.enqueue("fn", None)

    claimed = await engine.claim("m1", ["fn"], 10)

    assert [j.id for j in claimed] == [real.id]
    assert await redis.xlen(pk.ready("fn")) == 0


async def test_claim_refuses_a_bad_machine_id(engine: QueueEngine) -> None:
    with pytest.raises(ValidationFailed) as info:
        await engine.claim("bad machine", ["fn"], 1)
    assert info.value.details["field"] == "machine"


async def test_enqueue_and_claim_leases_jobs_for_a_waiting_machine_in_the_same_round_trip(
    engine: QueueEngine,
) -> None:
    await engine.heartbeat("m1")
    [enqueued], [claimed] = await engine.enqueue_and_claim(
        [EnqueueRequest("fn", 7)], [HandOff("m1", ["fn"], 5, "fn")]
    )
    assert [(j.id, j.input, j.attempt) for j in claimed] == [(enqueued.id, 7, 1)]
    record = await engine.get_job(enqueued.id)
    assert (record.status, record.machine) == ("running", "m1")


async def test_enqueue_and_claim_leases_nothing_to_a_machine_without_a_heartbeat(
    engine: QueueEngine,
) -> None:
    [enqueued], [claimed] = await engine.enqueue_and_claim(
        [EnqueueRequest("fn")], [HandOff("ghost", ["fn"], 1, "fn")]
    )
    assert claimed == []
    assert (await engine.get_job(enqueued.id)).status == "queued"


async def test_enqueue_and_claim_hands_back_its_claims_when_the_enqueue_fails(
    engine: QueueEngine,
) -> None:
    await engine.heartbeat("m1")
    waiting = await engine.enqueue("fn", idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        await engine.enqueue_and_claim(
            [EnqueueRequest("other", idempotency_key="k")], [HandOff("m1", ["fn"], 1, "fn")]
        )
    record = await engine.get_job(waiting.id)
    assert (record.status, record.attempt) == ("queued", 0)
    assert [j.id for j in await engine.claim("m2", ["fn"], 1)] == [waiting.id]
