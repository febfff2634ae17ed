"""Helpers for the queue engine's tests.

Time is simulated by moving scores, never by sleeping: the scripts read Redis's clock,
so putting a lease deadline, a delayed job's due time or a machine's last heartbeat at
score 0 makes it lie in the past for the next reap, promote or dead-machine pass.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from tether.queue.engine import QueueEngine
from tether.queue.records import ClaimedJob


async def expire_lease(redis: Redis, engine: QueueEngine, job_id: str) -> None:
    """The machine stopped extending this lease: its deadline is now in the past."""
    pk = engine.keys.for_id(job_id)
    await redis.zadd(pk.leases, {job_id: 0}, xx=True)


async def pass_timeout(redis: Redis, engine: QueueEngine, job_id: str) -> None:
    """The job ran past its own timeout: deadline and lease both in the past."""
    pk = engine.keys.for_id(job_id)
    await redis.hset(pk.job(job_id), "deadline", 1)
    await redis.zadd(pk.leases, {job_id: 0}, xx=True)


async def make_due(redis: Redis, engine: QueueEngine, job_id: str) -> None:
    """A delayed job's time has come."""
    pk = engine.keys.for_id(job_id)
    await redis.zadd(pk.delayed, {job_id: 0}, xx=True)


async def silence_machine(redis: Redis, engine: QueueEngine, machine: str) -> None:
    """The machine's last heartbeat is long ago."""
    for pk in engine.keys.all_partitions():
        await redis.zadd(pk.machines, {machine: 0}, xx=True)


async def job_hash(redis: Redis, engine: QueueEngine, job_id: str) -> dict[str, Any]:
    return dict(await redis.hgetall(engine.keys.for_id(job_id).job(job_id)))


async def claim_one(engine: QueueEngine, function: str = "fn", machine: str = "m1") -> ClaimedJob:
    jobs = await engine.claim(machine, [function], 1)
    assert len(jobs) == 1, f"expected one {function} job to claim, got {jobs}"
    return jobs[0]


async def pass_expiry(redis: Redis, engine: QueueEngine, job_id: str) -> None:
    """The job's `expires` time has come: its field and its expiry entry in the past."""
    pk = engine.keys.for_id(job_id)
    await redis.hset(pk.job(job_id), "expires_at", 1)
    await redis.zadd(pk.expiring, {job_id: 1}, xx=True)
