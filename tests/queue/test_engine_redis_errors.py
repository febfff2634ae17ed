"""Redis failures come out typed, and never leave a transition half done."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from queue_helpers import claim_one
from redis.asyncio import Redis

from tether.errors import RedisOutOfMemory, RedisUnavailable
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, HandOff, QueueEngine
from tether.queue.keys import Keys
from tether.redis_server import RedisServer, free_port


async def test_an_unreachable_redis_is_redis_unavailable(keys: Keys) -> None:
    client = Redis(port=free_port(), socket_connect_timeout=1)
    engine = QueueEngine(client, QueueConfig(keys=keys))
    try:
        with pytest.raises(RedisUnavailable):
            await engine.enqueue("fn", None)
        with pytest.raises(RedisUnavailable):
            await engine.claim("m1", ["fn"], 1)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("oom"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
async def full_redis(small_server: RedisServer) -> AsyncIterator[Redis]:
    """A server whose maxmemory (noeviction) sits just above what it uses now."""
    client = Redis.from_url(small_server.url, decode_responses=True)
    await client.config_set("maxmemory", 0)
    await client.flushall()
    yield client
    await client.config_set("maxmemory", 0)
    await client.flushall()
    await client.aclose()


async def fill_up(engine: QueueEngine, redis: Redis) -> list[str]:
    await engine.load_scripts()  # as a running API has (they take memory too)
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory", used + 256 * 1024)
    accepted: list[str] = []
    with pytest.raises(RedisOutOfMemory):
        for i in range(10_000):
            accepted.append((await engine.enqueue("fn", "x" * 8192, job_id=f"j{i}")).id)
    return accepted


async def test_a_full_redis_refuses_an_enqueue_with_redis_out_of_memory_and_no_trace(
    full_redis: Redis, keys: Keys
) -> None:
    engine = QueueEngine(full_redis, QueueConfig(keys=keys))
    pk = keys.partition(0)

    accepted = await fill_up(engine, full_redis)

    refused = f"j{len(accepted)}"
    assert accepted and await full_redis.exists(pk.job(refused)) == 0
    assert await full_redis.exists(pk.timeline(refused)) == 0
    assert await full_redis.xlen(pk.ready("fn")) == len(accepted)
    assert await full_redis.zcard(pk.jobs) == len(accepted)


async def test_a_full_redis_still_lets_a_leased_job_complete(full_redis: Redis, keys: Keys) -> None:
    # Scripts are refused only at their first write when that write can grow memory;
    # complete begins by dropping the lease, so finishing work is never blocked.
    engine = QueueEngine(full_redis, QueueConfig(keys=keys))
    await engine.enqueue("fn", None, job_id="first")
    job = await claim_one(engine)
    await fill_up(engine, full_redis)

    await engine.complete(job.id, job.token, "done", machine=job.machine)

    assert (await engine.get_job(job.id)).status == "completed"


async def test_scripts_are_reloaded_after_script_flush(engine: QueueEngine, redis: Redis) -> None:
    await engine.enqueue("fn", 1)
    await redis.script_flush()

    enqueued = await engine.enqueue("fn", 2)  # pipelined path
    await redis.script_flush()
    claimed = await engine.claim("m1", ["fn"], 2)  # direct path

    assert enqueued.created and len(claimed) == 2


async def test_a_hand_off_after_script_flush_still_leases_the_new_job(
    engine: QueueEngine, redis: Redis
) -> None:
    # The enqueue and the claim travel in one round trip; were only one of them missing,
    # the claim would run before the enqueue it depends on. Every NOSCRIPT reloads every
    # script, so after a flush both are missing and both are sent again in order.
    await engine.heartbeat("m1")
    await redis.script_flush()

    [enqueued], [claimed] = await engine.enqueue_and_claim(
        [EnqueueRequest("fn", 7)], [HandOff("m1", ["fn"], 5, "fn")]
    )

    assert [j.id for j in claimed] == [enqueued.id]
    assert await redis.script_exists(*(s.sha for s in engine._scripts.values())) == [True] * len(
        engine._scripts
    )


async def test_load_scripts_loads_every_script(engine: QueueEngine, redis: Redis) -> None:
    await redis.script_flush()

    await engine.load_scripts()

    shas = [script.sha for script in engine._scripts.values()]
    assert await redis.script_exists(*shas) == [True] * len(shas)
