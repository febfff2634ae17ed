"""Concurrency limits: per function and per concurrency key, enforced by the claim, and
every slot given back however the lease ends (complete, fail, reap, release, dead
machine, cancel)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from queue_helpers import expire_lease, job_hash, pass_expiry, silence_machine
from redis.asyncio import Redis

from tether.errors import ValidationFailed
from tether.protocol import ErrorInfo, FunctionLimits, RateLimit
from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys
from tether.queue.records import ClaimedJob

BOOM = ErrorInfo(type="E", message="boom")


async def claim_ids(engine: QueueEngine, functions: list[str] | None = None) -> list[str]:
    return [j.id for j in await engine.claim("m1", functions or ["fn"], 100)]


async def test_a_function_limit_caps_its_running_jobs(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(concurrency=2))
    for i in range(5):
        await engine.enqueue("fn", i, job_id=f"j{i}")

    first = await claim_ids(engine)
    second = await claim_ids(engine)

    assert first == ["j0", "j1"]
    assert second == []
    assert await engine.running_counts("fn") == {"": 2}


async def test_a_full_function_leaves_the_claim_to_other_functions(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(concurrency=1))
    for i in range(3):
        await engine.enqueue("fn", i)
        await engine.enqueue("other", i)

    claimed = await engine.claim("m1", ["fn", "other"], 10)

    assert sorted(j.function for j in claimed) == ["fn", "other", "other", "other"]


async def test_completing_a_job_gives_its_slot_back(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(concurrency=1))
    await engine.enqueue("fn", None, job_id="a")
    await engine.enqueue("fn", None, job_id="b")
    [job] = await engine.claim("m1", ["fn"], 10)

    await engine.complete(job.id, job.token, None, machine="m1")

    assert await claim_ids(engine) == ["b"]


async def end_by_complete(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    await engine.complete(job.id, job.token, None, machine="m1")


async def end_by_fail(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    await engine.fail(job.id, job.token, BOOM, machine="m1", retryable=False)


async def end_by_retry(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    await engine.fail(job.id, job.token, BOOM, machine="m1")


async def end_by_reap(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    await expire_lease(redis, engine, job.id)
    await engine.reap()


async def end_by_release(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    await engine.release(job.id, job.token, machine="m1")


async def end_by_machine_death(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    await silence_machine(redis, engine, "m1")
    await engine.reap_dead_machines()


async def end_by_cancel(engine: QueueEngine, redis: Redis, job: ClaimedJob) -> None:
    assert await engine.cancel(job.id) == "cancelling"
    await engine.release(job.id, job.token, machine="m1")  # the worker stops it


ENDS: dict[str, Callable[[QueueEngine, Redis, ClaimedJob], Awaitable[None]]] = {
    "complete": end_by_complete,
    "fail": end_by_fail,
    "fail-and-retry": end_by_retry,
    "reap": end_by_reap,
    "release": end_by_release,
    "machine_dead": end_by_machine_death,
    "cancel": end_by_cancel,
}


@pytest.mark.parametrize("end", list(ENDS))
async def test_every_end_of_a_lease_gives_its_slots_back(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys, end: str
) -> None:
    await engine.set_limits("fn", FunctionLimits(concurrency=1))
    await engine.heartbeat("m1")
    await engine.enqueue("fn", None, job_id="held", concurrency_key="cust")
    await engine.enqueue("fn", None, job_id="waits", concurrency_key="cust")
    [job] = await engine.claim("m1", ["fn"], 10)
    assert await engine.running_counts("fn") == {"": 1, "cust": 1}

    await ENDS[end](engine, redis, job)

    assert await engine.running_counts("fn") == {}
    assert await redis.exists(pk.running) == 0
    assert "slots" not in await job_hash(redis, engine, "held")


async def test_a_full_key_parks_its_jobs_and_the_claim_takes_other_keys(
    engine: QueueEngine,
) -> None:
    for n, key in enumerate(["a", "a", "b", "a", "b"]):
        await engine.enqueue("fn", None, job_id=f"j{n}", concurrency_key=key)

    assert await claim_ids(engine) == ["j0", "j2"]
    assert await engine.running_counts("fn") == {"a": 1, "b": 1}
    assert (await engine.get_job("j1")).status == "queued"


async def test_a_parked_job_says_what_it_waits_on(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None, job_id="first", concurrency_key="cust", concurrency_limit=1)
    await engine.enqueue("fn", None, job_id="second", concurrency_key="cust", concurrency_limit=1)
    await claim_ids(engine)

    record = await engine.get_job("second")

    assert record.status == "queued"
    assert record.waiting_on == {"kind": "concurrency", "key": "cust", "limit": 1}


async def test_a_parked_job_runs_once_its_key_frees_a_slot(engine: QueueEngine) -> None:
    for n in range(3):
        await engine.enqueue("fn", n, job_id=f"j{n}", concurrency_key="cust")
    [job] = await engine.claim("m1", ["fn"], 10)

    await engine.complete(job.id, job.token, None, machine="m1")
    [after] = await engine.claim("m1", ["fn"], 10)

    assert after.id == "j1"
    assert (await engine.get_job("j1")).waiting_on is None
    assert await claim_ids(engine) == []


async def test_a_job_limit_is_the_number_of_slots_of_its_key(engine: QueueEngine) -> None:
    for n in range(5):
        await engine.enqueue("fn", n, job_id=f"j{n}", concurrency_key="k", concurrency_limit=3)

    assert await claim_ids(engine) == ["j0", "j1", "j2"]


async def test_the_function_key_limit_applies_to_jobs_naming_none(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(key_concurrency=2))
    for n in range(4):
        await engine.enqueue("fn", n, job_id=f"j{n}", concurrency_key="k")

    assert await claim_ids(engine) == ["j0", "j1"]


async def test_cancelling_a_parked_job_takes_it_off_the_parked_list(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, job_id="runs", concurrency_key="k")
    await engine.enqueue("fn", None, job_id="parked", concurrency_key="k")
    [job] = await engine.claim("m1", ["fn"], 10)

    assert await engine.cancel("parked") == "cancelled"
    await engine.complete(job.id, job.token, None, machine="m1")

    assert await redis.exists(pk.parked("fn", "k")) == 0
    assert await claim_ids(engine) == []


async def test_a_queued_job_of_a_full_function_says_so(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(concurrency=1))
    await engine.enqueue("fn", None, job_id="a")
    await engine.enqueue("fn", None, job_id="b")
    await claim_ids(engine)

    record = await engine.get_job("b")

    assert record.waiting_on == {"kind": "concurrency", "limit": 1, "running": 1}


async def test_limits_read_back_as_set_and_clear_to_none(engine: QueueEngine) -> None:
    limits = FunctionLimits(
        concurrency=4, key_concurrency=2, rate=RateLimit(limit=10, period=1.5), key_rate=None
    )
    await engine.set_limits("fn", limits)
    assert await engine.get_limits("fn") == limits

    await engine.set_limits("fn", None)

    assert await engine.get_limits("fn") == FunctionLimits()


async def test_a_cleared_limit_stops_holding_jobs_back(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(concurrency=1))
    for n in range(3):
        await engine.enqueue("fn", n)
    await claim_ids(engine)

    await engine.set_limits("fn", None)

    assert len(await claim_ids(engine)) == 2


async def test_a_huge_concurrency_key_is_refused(engine: QueueEngine) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await engine.enqueue("fn", None, concurrency_key="k" * 10_000)

    assert raised.value.details["field"] == "concurrency_key"


async def test_a_concurrency_limit_without_a_key_is_refused(engine: QueueEngine) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await engine.enqueue("fn", None, concurrency_limit=2)

    assert raised.value.details["field"] == "concurrency_limit"


@pytest.mark.parametrize("limit", [0, -1, 10**9])
async def test_a_concurrency_limit_out_of_range_is_refused(engine: QueueEngine, limit: int) -> None:
    with pytest.raises(ValidationFailed):
        await engine.enqueue("fn", None, concurrency_key="k", concurrency_limit=limit)


async def test_a_parked_job_past_its_expiry_ends_expired_and_leaves_the_parked_list(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, job_id="runs", concurrency_key="k")
    await engine.enqueue("fn", None, job_id="parked", concurrency_key="k", expires_ms=60_000)
    await claim_ids(engine)
    await pass_expiry(redis, engine, "parked")

    assert await engine.expire() == ["parked"]
    assert (await engine.get_job("parked")).status == "expired"
    assert await redis.exists(pk.parked("fn", "k")) == 0


async def test_a_priority_job_past_its_expiry_leaves_its_priority_stream(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, job_id="j", priority=5, expires_ms=60_000)
    await pass_expiry(redis, engine, "j")

    assert await engine.expire() == ["j"]
    assert await redis.xlen(pk.level_ready("fn", 5)) == 0
    assert await claim_ids(engine) == []
