"""``TETHER_DURABILITY=replicated``: a batch of transitions is acknowledged only once
replicas confirm it (``WAIT`` on the batch's own connection); too few in time is
``NotReplicated`` (503 ``not_replicated``), and the write it reports on was made, so a
retry with the idempotency key finds the same job.

The kill -9 of a primary under load is tests/processes/test_cluster_durability.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tether.errors import NotReplicated
from tether.queue import wire
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import Client, Durability, close_client, pooled_client, redis_client
from tether.redis_server import RedisServer


def durable_client(url: str, replicas: int = 1, timeout_ms: int = 50) -> Client:
    return pooled_client(
        url,
        max_connections=4,
        timeout=5,
        durability=Durability(replicas, timeout_ms),
        decode_responses=True,
    )


@pytest.fixture
async def no_replica_engine(redis_url: str, keys: Keys) -> AsyncIterator[QueueEngine]:
    """Durability asks for one replica; the session's server (or cluster) has none."""
    client = durable_client(redis_url)
    yield QueueEngine(client, QueueConfig(keys=keys))
    await close_client(client)


async def test_an_enqueue_no_replica_confirms_is_not_replicated_after_the_timeout(
    no_replica_engine: QueueEngine,
) -> None:
    started = time.monotonic()
    with pytest.raises(NotReplicated, match="0 of the 1 replica"):
        await no_replica_engine.enqueue("f", idempotency_key="order-1")
    assert 0.04 < time.monotonic() - started < 2


async def test_a_write_reported_not_replicated_was_made_and_its_retry_finds_the_same_job(
    no_replica_engine: QueueEngine, engine: QueueEngine
) -> None:
    with pytest.raises(NotReplicated):
        await no_replica_engine.enqueue("f", idempotency_key="order-2")
    again = await engine.enqueue("f", idempotency_key="order-2")  # async durability
    assert not again.created


async def test_a_transition_run_through_redis_py_waits_too(
    no_replica_engine: QueueEngine, engine: QueueEngine
) -> None:
    # A cancel runs its script through redis-py (AsyncScript), not a batch of ours.
    job = await engine.enqueue("f")
    with pytest.raises(NotReplicated):
        await no_replica_engine.cancel(job.id)
    assert (await engine.get_job(job.id)).status == "cancelled"


async def test_a_batch_without_a_transition_waits_for_no_replica(redis_url: str) -> None:
    client = durable_client(redis_url, timeout_ms=5000)
    try:
        started = time.monotonic()
        assert await wire.pipelined(client, [("XLEN", "{durable}:nothing")]) == [0]
        assert time.monotonic() - started < 1
    finally:
        await close_client(client)


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary = RedisServer(tmp_path / "primary", appendonly=False).start()
    replica = RedisServer(
        tmp_path / "replica",
        appendonly=False,
        extra_args=["--replicaof", "127.0.0.1", str(primary.port)],
    ).start()
    yield primary, replica
    replica.stop()
    primary.stop()


@pytest.mark.single_node(reason="starts a primary and a replica of its own")
async def test_a_write_is_acknowledged_once_the_replica_has_it(
    primary_and_replica: tuple[RedisServer, RedisServer], keys: Keys
) -> None:
    primary, replica = primary_and_replica
    client = durable_client(primary.url, timeout_ms=5000)
    on_replica = redis_client(replica.url, decode_responses=True)
    try:
        engine = QueueEngine(client, QueueConfig(keys=keys))
        job = await engine.enqueue("f")
        # Read from the replica at once: the acknowledgement came after it had the job.
        assert await on_replica.exists(keys.for_id(job.id).job(job.id)) == 1
    finally:
        await close_client(client)
        await on_replica.aclose()
