"""Retention of finished records, and the timeline every transition appends to."""

from __future__ import annotations

from queue_helpers import claim_one, expire_lease
from redis.asyncio import Redis

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys, PartitionKeys
from tether.queue.records import ErrorInfo


async def test_a_finished_job_expires_after_the_retention(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None)
    job = await claim_one(engine)
    assert await redis.pttl(pk.job(job.id)) == -1  # unfinished jobs never expire

    await engine.complete(job.id, job.token, None, machine=job.machine)

    retention = engine.config.retention_ms
    assert retention - 60_000 < await redis.pttl(pk.job(job.id)) <= retention
    assert retention - 60_000 < await redis.pttl(pk.timeline(job.id)) <= retention


async def test_timeline_records_each_transition_with_the_state_it_left(
    engine: QueueEngine, redis: Redis
) -> None:
    enqueued = await engine.enqueue("fn", None, max_attempts=2)
    first = await claim_one(engine)
    await engine.fail(
        first.id, first.token, ErrorInfo(type="E", message="m"), machine=first.machine
    )
    await redis.zadd(engine.keys.for_id(first.id).delayed, {first.id: 0})
    await engine.promote()
    second = await claim_one(engine, machine="m2")
    await engine.complete(second.id, second.token, None, machine=second.machine)

    events = await engine.timeline(enqueued.id)

    assert [(e["event"], e["prev"]) for e in events] == [
        ("enqueued", ""),
        ("claimed", "queued"),
        ("retry_scheduled", "running"),
        ("promoted", "delayed"),
        ("claimed", "queued"),
        ("completed", "running"),
    ]
    assert [e.get("machine") for e in events if e["event"] == "claimed"] == ["m1", "m2"]
    assert [int(e["at"]) for e in events] == sorted(int(e["at"]) for e in events)


async def test_a_child_jobs_events_go_to_its_runs_timeline(engine: QueueEngine) -> None:
    enqueued = await engine.enqueue("fn", None, job_id="step", parent="run-1")

    events = await engine.timeline("run-1")

    assert [(e["event"], e["job"]) for e in events] == [("enqueued", enqueued.id)]


async def test_a_finished_child_job_writes_no_stream_that_nobody_reads(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.enqueue("fn", None, job_id="step", parent="run-1")
    job = await claim_one(engine)
    await engine.complete(job.id, job.token, 1, machine=job.machine)

    # Its run hears of it in the same script (run_job_finished); there was once an
    # events stream here (XADD per finished child, MAXLEN 100,000) that nothing read.
    assert await redis.exists(f"{pk.prefix}events") == 0


async def test_timelines_are_trimmed_to_about_their_maximum_length(
    redis: Redis, engine: QueueEngine, pk: PartitionKeys
) -> None:
    from tether.queue.config import QueueConfig

    short = QueueEngine(redis, QueueConfig(keys=engine.keys, timeline_maxlen=10))
    await short.enqueue("fn", None, job_id="busy", max_attempts=1000)
    for _ in range(300):
        job = await claim_one(short)
        await expire_lease(redis, short, job.id)
        await short.reap()

    # MAXLEN ~ trims whole stream nodes: a bounded length, not an exact one.
    assert await redis.xlen(pk.timeline("busy")) < 250


async def test_by_default_a_stand_alone_job_writes_no_timeline_stream(
    redis: Redis, keys: Keys
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=keys))
    job = await engine.enqueue("fn", None)
    claimed = await engine.claim("m1", ["fn"], 1)
    await engine.complete(job.id, claimed[0].token, 1, machine=claimed[0].machine)

    assert await redis.exists(keys.for_id(job.id).timeline(job.id)) == 0
    assert (await engine.get_job(job.id)).status == "completed"


async def test_by_default_a_runs_job_still_writes_to_the_runs_timeline(
    redis: Redis, keys: Keys
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=keys))
    job = await engine.enqueue("fn", None, parent="run1")
    await engine.claim("m1", ["fn"], 1)

    events = [e["event"] for e in await engine.timeline("run1")]
    assert events == ["enqueued", "claimed"]
    assert all(e["job"] == job.id for e in await engine.timeline("run1"))


async def test_a_runs_timeline_keeps_every_event_of_its_jobs_while_it_is_open(
    redis: Redis, keys: Keys
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=keys, timeline_maxlen=5))
    for i in range(300):
        await engine.enqueue("fn", i, parent="run1")

    # A run's history is not trimmed while it is open (it expires with the run).
    assert await redis.xlen(keys.for_id("run1").timeline("run1")) == 300
