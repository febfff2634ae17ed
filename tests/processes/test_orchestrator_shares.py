"""Three `tether orchestrator` processes on 8 partitions divide them: every partition is
owned, each by one replica, none owns more than ceil(8/3); a replica killed with kill -9
has its partitions taken over within two lease periods, and the work goes on there."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from proc_stack import Stack, wait_until

from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import redis_client

pytestmark = pytest.mark.processes

PARTITIONS = 8
LEASE = 1.0  # seconds


def read(stack: Stack, what: str) -> object:
    async def go() -> object:
        redis = redis_client(stack.redis_url, decode_responses=True)
        try:
            engine = QueueEngine(redis, QueueConfig(keys=stack.keys))
            if what == "owners":
                return await engine.partition_owners()
            jobs = await engine.enqueue_many([EnqueueRequest("f", delay_ms=1) for _ in range(64)])
            return [j.id for j in jobs]
        finally:
            await redis.aclose()

    return asyncio.run(go())


def statuses(stack: Stack, ids: list[str]) -> Counter[str]:
    async def go() -> Counter[str]:
        redis = redis_client(stack.redis_url, decode_responses=True)
        try:
            engine = QueueEngine(redis, QueueConfig(keys=stack.keys))
            return Counter([(await engine.get_job(i)).status.value for i in ids])
        finally:
            await redis.aclose()

    return asyncio.run(go())


def test_three_orchestrators_divide_eight_partitions_and_take_over_from_a_killed_one(
    redis_url: str, keys: Keys, tmp_path: Path
) -> None:
    stack = Stack(redis_url, Keys(prefix=keys.prefix, partitions=PARTITIONS), tmp_path)
    env = stack.env | {"TETHER_PARTITIONS": str(PARTITIONS)}
    try:
        procs = [
            stack.spawn(f"orch{i}", ["orchestrator", "--lease", str(LEASE)], env) for i in range(3)
        ]

        def divided() -> list[str] | None:
            owners = read(stack, "owners")
            assert isinstance(owners, list)
            counts = Counter(owners)
            if None in counts or len(counts) != 3 or max(counts.values()) > 3:
                return None
            return owners

        owners = wait_until(divided, 30, "3 replicas to own every partition once")
        assert sorted(Counter(owners).values()) == [2, 3, 3]

        # kill -9 the owner of partition 0: its partitions are taken over within 2 leases.
        victim_id = owners[0]
        victim = next(p for p in procs if f"-{p.pid}-" in victim_id)
        victim.kill()
        killed = time.monotonic()

        def taken_over() -> bool:
            now = read(stack, "owners")
            assert isinstance(now, list)
            return None not in now and victim_id not in now

        wait_until(taken_over, 2 * LEASE + 1.0, "the killed replica's partitions taken over")
        took = time.monotonic() - killed
        assert took <= 2 * LEASE + 0.5, f"takeover took {took:.2f} s"
        assert sorted(Counter(read(stack, "owners")).values()) == [4, 4]  # type: ignore[arg-type]

        # And the passes go on in every partition: delayed jobs everywhere get promoted.
        ids = read(stack, "enqueue")
        assert isinstance(ids, list)
        wait_until(
            lambda: statuses(stack, ids) == Counter({"queued": len(ids)}),
            10,
            "every delayed job promoted by the two replicas left",
        )
    finally:
        stack.close(show_logs=False)
