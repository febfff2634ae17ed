"""machine_dead: a machine that missed its heartbeats loses all of its leases at once."""

from __future__ import annotations

from queue_helpers import silence_machine
from redis.asyncio import Redis

from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys


async def test_a_dead_machines_jobs_are_all_ready_again_at_once(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    for i in range(3):
        await engine.enqueue("fn", i)
    jobs = await engine.claim("m1", ["fn"], 3)
    await engine.heartbeat("m1")
    await silence_machine(redis, engine, "m1")

    dead = await engine.reap_dead_machines()

    assert sorted(dead["m1"]) == sorted(j.id for j in jobs)
    assert {r.status for r in await engine.get_jobs([j.id for j in jobs])} == {"queued"}  # type: ignore[union-attr]
    assert await redis.zcard(pk.leases) == 0
    assert await engine.machines() == []
    assert len(await engine.claim("m2", ["fn"], 10)) == 3


async def test_a_machine_that_heartbeated_again_is_left_alone(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", None)
    job = (await engine.claim("m1", ["fn"], 1))[0]
    await engine.heartbeat("m1")
    # The orchestrator chose its cutoff before this machine's latest heartbeat.
    cutoff = (await engine.machines())[0]["last_heartbeat_ms"] - 1

    assert await engine.machine_dead("m1", cutoff) is None

    assert (await engine.get_job(job.id)).status == "running"
    assert [m["id"] for m in await engine.machines()] == ["m1"]


async def test_a_live_machine_is_not_reaped(engine: QueueEngine) -> None:
    await engine.heartbeat("m1")

    assert await engine.reap_dead_machines() == {}


async def test_a_machine_leaving_releases_its_leases_unconditionally(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", None)
    job = (await engine.claim("m1", ["fn"], 1))[0]
    await engine.heartbeat("m1")

    assert await engine.machine_dead("m1") == [job.id]
    assert (await engine.get_job(job.id)).status == "queued"


async def test_a_dead_machines_job_on_its_last_attempt_is_dead(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.enqueue("fn", None, max_attempts=1)
    job = (await engine.claim("m1", ["fn"], 1))[0]
    await engine.heartbeat("m1")
    await silence_machine(redis, engine, "m1")

    await engine.reap_dead_machines()

    record = await engine.get_job(job.id)
    assert record.status == "dead"
    assert record.error is not None and record.error.type == "MachineLost"
