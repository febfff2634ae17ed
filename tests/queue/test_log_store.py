"""The log streams of jobs and runs (tether/queue/logs.py, lua/ingest_logs.lua): written
only by the machine that holds or last held the job, bounded with what is cut counted,
and expiring with the record they belong to."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from queue_helpers import claim_one
from redis.asyncio import Redis

from tether.errors import NotFound
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.logs import LogIngest, LogStore
from tether.queue.runs import RunEngine


def lines(*messages: str) -> list[str]:
    return [orjson.dumps({"level": "INFO", "message": m}).decode() for m in messages]


@pytest.fixture
def store(redis: Redis, config: QueueConfig) -> LogStore:
    return LogStore(redis, config)


async def test_the_holding_machine_writes_a_jobs_lines_and_reads_them_in_order(
    engine: QueueEngine, store: LogStore
) -> None:
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)

    (verdict,) = await store.ingest("m1", [LogIngest("j1", job.token, lines("a", "b"))])
    read = await store.read("job", "j1")

    assert verdict.accepted and verdict.trimmed == 0
    assert [s.line["message"] for s in read.lines] == ["a", "b"]
    assert read.status == "running" and read.dropped == 0


async def test_a_forged_token_or_another_machine_writes_nothing(
    engine: QueueEngine, store: LogStore, redis: Redis
) -> None:
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)

    forged, other = await store.ingest(
        "m1", [LogIngest("j1", "0" * 32, lines("forged"))]
    ) + await store.ingest("m2", [LogIngest("j1", job.token, lines("not mine"))])

    assert (forged.accepted, forged.reason) == (False, "lease_not_held")
    assert (other.accepted, other.reason) == (False, "lease_not_held")
    assert not await redis.exists(engine.keys.for_id("j1").job_logs("j1"))


async def test_an_unknown_job_is_not_found_and_nothing_is_created(
    store: LogStore, redis: Redis, engine: QueueEngine
) -> None:
    (verdict,) = await store.ingest("m1", [LogIngest("nope", "t", lines("x"))])

    assert (verdict.accepted, verdict.reason) == (False, "not_found")
    assert not await redis.exists(engine.keys.for_id("nope").job_logs("nope"))
    with pytest.raises(NotFound):
        await store.read("job", "nope")


async def test_a_job_of_another_namespace_is_not_found_from_this_one(
    engine: QueueEngine, redis: Redis, config: QueueConfig
) -> None:
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)
    acme = LogStore(redis, dataclasses.replace(config, keys=config.keys.for_namespace("acme")))

    (verdict,) = await acme.ingest("m1", [LogIngest("j1", job.token, lines("crossing"))])

    assert (verdict.accepted, verdict.reason) == (False, "not_found")


async def test_lines_past_the_bound_are_cut_and_counted_on_the_job(
    engine: QueueEngine, redis: Redis, config: QueueConfig
) -> None:
    store = LogStore(redis, dataclasses.replace(config, log_maxlen=10))
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)

    for n in range(10):
        await store.ingest(
            "m1", [LogIngest("j1", job.token, lines(*[f"{n}.{i}" for i in range(50)]))]
        )
    read = await store.read("job", "j1", limit=1000)

    assert read.trimmed > 0
    assert len(read.lines) + read.trimmed == 500
    assert read.lines[-1].line["message"] == "9.49"  # the newest are kept


async def test_dropped_lines_reported_by_the_machine_are_counted_on_the_job(
    engine: QueueEngine, store: LogStore
) -> None:
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)

    await store.ingest("m1", [LogIngest("j1", job.token, lines("a"), dropped=7)])
    await store.ingest("m1", [LogIngest("j1", job.token, [], dropped=3)])

    assert (await store.read("job", "j1")).dropped == 10


async def test_a_jobs_lines_expire_with_its_record_when_it_finishes(
    engine: QueueEngine, store: LogStore, redis: Redis
) -> None:
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)
    await store.ingest("m1", [LogIngest("j1", job.token, lines("before the end"))])
    pk = engine.keys.for_id("j1")
    assert await redis.pttl(pk.job_logs("j1")) == -1  # lives while the job does

    await engine.complete("j1", job.token, 1, machine="m1")

    record_ttl, logs_ttl = await redis.pttl(pk.job("j1")), await redis.pttl(pk.job_logs("j1"))
    assert record_ttl > 0 and abs(record_ttl - logs_ttl) < 1000


async def test_lines_arriving_after_the_end_get_the_records_remaining_time(
    engine: QueueEngine, store: LogStore, redis: Redis
) -> None:
    await engine.enqueue("fn", job_id="j1")
    job = await claim_one(engine)
    await engine.complete("j1", job.token, 1, machine="m1")
    pk = engine.keys.for_id("j1")
    await redis.pexpire(pk.job("j1"), 60_000)  # part of its retention has passed

    (verdict,) = await store.ingest("m1", [LogIngest("j1", job.token, lines("late"))])

    assert verdict.accepted  # it held the job under this token: late lines still count
    assert 58_000 < await redis.pttl(pk.job_logs("j1")) <= 60_000


async def test_an_activations_lines_go_to_its_run_and_expire_with_the_run(
    engine: QueueEngine, store: LogStore, redis: Redis, config: QueueConfig
) -> None:
    runs = RunEngine(redis, config)
    started = await runs.start("wf", None, version=1)
    activation = await claim_one(engine, function="wf:wf@1")
    await runs.begin(started.id, activation.id, activation.token, machine="m1")

    (verdict,) = await store.ingest("m1", [LogIngest(activation.id, activation.token, lines("hi"))])
    read = await store.read("run", started.id)
    await runs.complete(started.id, activation.id, activation.token, 1, machine="m1")

    assert verdict.accepted
    assert [(s.line["message"], s.run, s.captured) for s in read.lines] == [
        ("hi", started.id, True)
    ]
    pk = engine.keys.for_id(started.id)
    record_ttl, logs_ttl = (
        await redis.pttl(pk.run(started.id)),
        await redis.pttl(pk.logs(started.id)),
    )
    assert record_ttl > 0 and abs(record_ttl - logs_ttl) < 1000
