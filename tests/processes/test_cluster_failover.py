"""Redis Cluster failover: kill -9 a primary under load; its replica takes over (the
cluster's own failover) and the same engine carries on without a restart: calls fail
with RedisUnavailable while the shard has no primary, then the client finds the new
primary (a fresh slot table after the connection error) and every partition works again.

What plain asynchronous replication loses is measured and printed, not asserted: a job
acknowledged by the old primary but not yet copied to its replica is gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import NotFound, RedisUnavailable
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import redis_client
from tether.redis_server import RedisCluster

pytestmark = [
    pytest.mark.processes,
    pytest.mark.single_node(reason="starts and kills a cluster of its own"),
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    c = RedisCluster(tmp_path / "cluster", masters=3, replicas=1, appendonly=True).start()
    yield c
    c.stop()


async def test_a_killed_primary_is_replaced_by_its_replica_and_tether_carries_on(
    cluster: RedisCluster, keys: Keys
) -> None:
    redis = redis_client(cluster.url, decode_responses=True)
    engine = QueueEngine(redis, QueueConfig(keys=Keys(prefix=keys.prefix, partitions=12)))
    try:
        acknowledged = [j.id for j in await engine.enqueue_many([EnqueueRequest("f")] * 60)]
        cluster.primaries[0].kill()
        killed = time.monotonic()
        failures = 0
        while True:  # under load: a batch across every partition every 50 ms
            try:
                batch = await engine.enqueue_many([EnqueueRequest("f") for _ in range(24)])
                acknowledged.extend(j.id for j in batch)
                if failures:
                    break
            except RedisUnavailable:
                failures += 1
            assert time.monotonic() - killed < 30, "no primary took over in 30 s"
            await asyncio.sleep(0.05)
        took = time.monotonic() - killed
        assert failures > 0  # the shard was away for a while, as it must be
        await engine.heartbeat("m1")
        claimed = await engine.claim("m1", ["f"], 10_000)
        partitions = {engine.keys.partition_of(j.id) for j in claimed}
        assert partitions == set(range(12))  # every shard serves again
        lost = 0
        for job_id in acknowledged:
            try:
                await engine.get_job(job_id)
            except NotFound:
                lost += 1
        print(
            f"failover: calls failed for {took:.1f} s; {lost} of {len(acknowledged)} "
            "acknowledged jobs lost to asynchronous replication"
        )
    finally:
        await redis.aclose()
