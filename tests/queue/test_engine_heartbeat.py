"""heartbeat: a machine is alive; the leases of the jobs it holds are extended in one call."""

from __future__ import annotations

from queue_helpers import claim_one, expire_lease
from redis.asyncio import Redis

from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys


async def test_heartbeat_extends_every_lease_the_machine_holds(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    for i in range(3):
        await engine.enqueue("fn", i)
    jobs = await engine.claim("m1", ["fn"], 3)
    for job in jobs:
        await redis.zadd(pk.leases, {job.id: 5}, xx=True)

    reply = await engine.heartbeat("m1", held=[j.id for j in jobs])

    now = await engine.server_time_ms()
    assert reply.extended == 3
    for job in jobs:
        deadline = await redis.zscore(pk.leases, job.id)
        assert deadline is not None and deadline > now


async def test_heartbeat_does_not_extend_a_lease_the_machine_does_not_list(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    # The poll reply that carried this job was lost (an API crashed): the machine never
    # saw it, so its lease must run out and the job go elsewhere, not wait for its timeout.
    await engine.enqueue("fn", None)
    orphan = await claim_one(engine, machine="m1")
    await redis.zadd(pk.leases, {orphan.id: 5}, xx=True)

    reply = await engine.heartbeat("m1", held=[])

    assert reply.extended == 0
    assert await redis.zscore(pk.leases, orphan.id) == 5
    assert await engine.reap() == [(orphan.id, "queued")]


async def test_heartbeat_leaves_other_machines_leases_alone(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine, machine="m2")
    await redis.zadd(pk.leases, {job.id: 5}, xx=True)

    reply = await engine.heartbeat("m1")

    assert reply.extended == 0
    assert await redis.zscore(pk.leases, job.id) == 5


async def test_heartbeat_records_the_machine_and_its_info(engine: QueueEngine) -> None:
    await engine.heartbeat("m1", {"functions": ["fn"]})

    machines = await engine.machines()

    assert [(m["id"], m["info"]) for m in machines] == [("m1", {"functions": ["fn"]})]


async def test_heartbeat_returns_the_jobs_whose_cancellation_was_requested(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await engine.cancel(job.id)

    reply = await engine.heartbeat("m1", held=[job.id])

    assert reply.cancelled == [job.id]


async def test_heartbeat_names_the_held_jobs_the_machine_lost(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    await expire_lease(redis, engine, job.id)
    await engine.reap()

    reply = await engine.heartbeat("m1", held=[job.id, "never-had-it"])

    assert sorted(reply.lost) == sorted([job.id, "never-had-it"])
    assert reply.extended == 0


async def test_heartbeat_never_extends_a_lease_past_the_jobs_timeout(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, timeout_ms=10_000)
    job = await claim_one(engine)
    record = await engine.get_job(job.id)
    # The deadline is the start + timeout + one lease ttl of grace to report. Bring it
    # closer than one ttl from now, as if the job had run for almost its whole timeout.
    assert record.started_at is not None
    assert (await redis.hget(pk.job(job.id), "deadline")) == str(
        record.started_at + 10_000 + engine.config.lease_ttl_ms
    )
    near = await engine.server_time_ms() + engine.config.lease_ttl_ms // 4
    await redis.hset(pk.job(job.id), "deadline", near)

    await engine.heartbeat("m1", held=[job.id])

    assert await redis.zscore(pk.leases, job.id) == near
