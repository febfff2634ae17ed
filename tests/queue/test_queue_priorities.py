"""Priorities: claims take the highest priority first, oldest first within one; the plain
path (every job at priority 0) leaves nothing of the feature behind in Redis."""

from __future__ import annotations

import pytest
from queue_helpers import make_due
from redis.asyncio import Redis

from tether.errors import ValidationFailed
from tether.limits import MAX_PRIORITY, MIN_PRIORITY
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys, PartitionKeys


async def ids_claimed(engine: QueueEngine, count: int = 100) -> list[str]:
    return [j.id for j in await engine.claim("m1", ["fn"], count)]


async def test_claims_take_the_highest_priority_first(engine: QueueEngine) -> None:
    for job_id, priority in [("low", -5), ("plain", 0), ("high", 7), ("top", 100)]:
        await engine.enqueue("fn", None, job_id=job_id, priority=priority)

    assert await ids_claimed(engine) == ["top", "high", "plain", "low"]


async def test_jobs_of_one_priority_are_claimed_oldest_first(engine: QueueEngine) -> None:
    batch = [EnqueueRequest("fn", i, job_id=f"b{i}", priority=3) for i in range(20)]
    await engine.enqueue_many(batch)
    for i in range(5):
        await engine.enqueue("fn", i, job_id=f"s{i}", priority=3)

    assert await ids_claimed(engine) == [f"b{i}" for i in range(20)] + [f"s{i}" for i in range(5)]


async def test_one_job_at_a_time_still_comes_in_priority_order(engine: QueueEngine) -> None:
    for n, priority in enumerate([0, -1, 2, 0, 2, -1]):
        await engine.enqueue("fn", None, job_id=f"j{n}", priority=priority)

    order = [(await engine.claim("m1", ["fn"], 1))[0].id for _ in range(6)]

    assert order == ["j2", "j4", "j0", "j3", "j1", "j5"]


async def test_a_delayed_job_promoted_later_takes_its_place_by_priority(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.enqueue("fn", None, job_id="waited", delay_ms=60_000, priority=9)
    await engine.enqueue("fn", None, job_id="plain")
    await engine.enqueue("fn", None, job_id="early-high", priority=9)
    await make_due(redis, engine, "waited")

    assert await engine.promote() == 1
    assert await ids_claimed(engine) == ["early-high", "waited", "plain"]


async def test_a_released_job_goes_back_to_its_priority(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None, job_id="high", priority=5)
    await engine.enqueue("fn", None, job_id="plain")
    [job] = await engine.claim("m1", ["fn"], 1)

    await engine.release(job.id, job.token, machine="m1")

    assert await ids_claimed(engine) == ["high", "plain"]


async def test_priorities_hold_within_each_partition(redis: Redis) -> None:
    keys = Keys(prefix="prio-parts", partitions=4)
    engine = QueueEngine(redis, QueueConfig(keys=keys))
    wanted: dict[int, list[str]] = {}
    for root in range(12):
        for priority in (-3, 0, 4):
            job_id = f"r{root}:p{priority}"
            await engine.enqueue("fn", None, job_id=job_id, priority=priority)
            wanted.setdefault(keys.partition_of(job_id), [])
    assert len(wanted) > 1, "the ids must spread over several partitions"

    claimed = await ids_claimed(engine, 1000)

    assert len(claimed) == 36
    for partition in wanted:
        mine = [i for i in claimed if keys.partition_of(i) == partition]
        priorities = [int(i.rsplit(":p", 1)[1]) for i in mine]
        assert priorities == sorted(priorities, reverse=True)


async def test_queue_depth_counts_every_priority(engine: QueueEngine) -> None:
    for priority in (-2, 0, 0, 5):
        await engine.enqueue("fn", None, priority=priority)

    assert await engine.queue_depth("fn") == 4


async def test_cancelling_a_queued_priority_job_takes_it_off_its_stream(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, job_id="j", priority=4)

    await engine.cancel("j")

    assert await redis.xlen(pk.level_ready("fn", 4)) == 0
    assert await ids_claimed(engine) == []


async def test_a_plain_job_leaves_no_trace_of_the_queue_features(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, job_id="j")
    await ids_claimed(engine)

    assert await redis.exists(pk.features, pk.levels("fn")) == 0
    assert "priority" not in await redis.hgetall(pk.job("j"))


async def test_a_drained_priority_level_is_forgotten(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, priority=3)
    await ids_claimed(engine)

    await ids_claimed(engine)  # finds the level empty

    assert await redis.exists(pk.features, pk.levels("fn"), pk.level_ready("fn", 3)) == 0


async def test_the_job_record_shows_its_priority(engine: QueueEngine) -> None:
    await engine.enqueue("fn", None, job_id="j", priority=-7)

    assert (await engine.get_job("j")).priority == -7


@pytest.mark.parametrize("priority", [MIN_PRIORITY - 1, MAX_PRIORITY + 1, 10**18, True])
async def test_a_priority_out_of_range_is_refused(engine: QueueEngine, priority: int) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await engine.enqueue("fn", None, priority=priority)

    assert raised.value.details["field"] == "priority"
