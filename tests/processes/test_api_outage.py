"""The API goes away while workers poll and run jobs: they back off, reconnect when it
returns, and every job still completes."""

from __future__ import annotations

import asyncio

import pytest
from proc_stack import Stack, timeline

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.redis_py import redis_client

pytestmark = pytest.mark.processes


def _enqueue_in_redis(stack: Stack, count: int) -> list[str]:
    """What another API replica would do while this one is down."""

    async def go() -> list[str]:
        redis = redis_client(stack.redis_url, decode_responses=True)
        try:
            engine = QueueEngine(redis, QueueConfig(keys=stack.keys))
            return [(await engine.enqueue("nap", 0.05)).id for _ in range(count)]
        finally:
            await redis.aclose()

    return asyncio.run(go())


def test_workers_reconnect_after_the_api_restarts_and_no_job_is_lost(stack: Stack) -> None:
    api = stack.api()
    stack.orchestrator()
    workers = [stack.worker("machine-a"), stack.worker("machine-b")]
    in_flight = [stack.submit("nap", 0.3)["id"] for _ in range(10)]

    api.kill()  # mid-job: results cannot be reported, polls and heartbeats fail
    for worker in workers:
        worker.wait_for_output("failed, retrying", timeout=15)
    while_down = _enqueue_in_redis(stack, 10)
    stack.api("api-restarted")
    for worker in workers:
        worker.wait_for_output("works again", timeout=30)

    finished = [stack.job(job_id, wait=30) for job_id in in_flight + while_down]
    unfinished = {
        job["id"]: [(e["event"], e.get("machine", "")) for e in timeline(stack, job["id"])]
        for job in finished
        if job["status"] != "completed"
    }
    # A job claimed for a poll whose answer died with the API must come back (its lease
    # expires) rather than stay "running" on a machine that never received it.
    assert unfinished == {}
    assert all(worker.alive for worker in workers)
