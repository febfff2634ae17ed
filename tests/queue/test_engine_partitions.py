"""Several partitions: one hash tag each; a run and its jobs share one."""

from __future__ import annotations

import pytest
from queue_helpers import silence_machine
from redis.asyncio import Redis

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys


@pytest.fixture
def parted(redis: Redis, keys: Keys) -> QueueEngine:
    return QueueEngine(redis, QueueConfig(keys=Keys(prefix=keys.prefix, partitions=4)))


async def test_jobs_spread_over_the_partitions(parted: QueueEngine, redis: Redis) -> None:
    ids = [(await parted.enqueue("fn", i)).id for i in range(40)]

    used = {parted.keys.partition_of(job_id) for job_id in ids}

    assert used == {0, 1, 2, 3}
    for job_id in ids:
        assert await redis.exists(parted.keys.for_id(job_id).job(job_id))


async def test_a_runs_jobs_land_in_the_runs_partition(parted: QueueEngine) -> None:
    run_partition = parted.keys.partition_of("run:abc")
    ids = [(await parted.enqueue("fn", i, parent="run:abc")).id for i in range(10)]

    assert {parted.keys.partition_of(job_id) for job_id in ids} == {run_partition}
    assert len(await parted.timeline("run:abc")) == 10


async def test_claim_covers_every_partition(parted: QueueEngine) -> None:
    ids = {(await parted.enqueue("fn", i)).id for i in range(20)}

    claimed = await parted.claim("m1", ["fn"], 100)

    assert {j.id for j in claimed} == ids


async def test_heartbeat_extends_leases_in_every_partition(
    parted: QueueEngine, redis: Redis
) -> None:
    for i in range(20):
        await parted.enqueue("fn", i)
    jobs = await parted.claim("m1", ["fn"], 100)

    reply = await parted.heartbeat("m1", held=[j.id for j in jobs])

    assert (reply.extended, reply.lost) == (20, [])


async def test_a_dead_machine_loses_its_leases_in_every_partition(
    parted: QueueEngine, redis: Redis
) -> None:
    for i in range(20):
        await parted.enqueue("fn", i)
    jobs = await parted.claim("m1", ["fn"], 100)
    await parted.heartbeat("m1")
    await silence_machine(redis, parted, "m1")

    dead = await parted.reap_dead_machines()

    assert sorted(dead["m1"]) == sorted(j.id for j in jobs)


async def test_an_idempotency_key_names_one_job_across_partitions(
    parted: QueueEngine,
) -> None:
    answers = [await parted.enqueue("fn", i % 5, idempotency_key=f"k{i % 5}") for i in range(20)]

    assert len({a.id for a in answers}) == 5
    assert sum(a.created for a in answers) == 5
