"""One orchestrator process serves every namespace a key was made for."""

from __future__ import annotations

import asyncio
import dataclasses

from redis.asyncio import Redis

from tether.orchestrator.namespaces import serve_namespaces
from tether.queue.apikeys import KeyStore
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine


async def test_a_namespace_created_while_it_runs_gets_its_delayed_jobs_promoted(
    redis: Redis, config: QueueConfig
) -> None:
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_namespaces(redis, config, stop, interval=0.02, discover_every=0.05)
    )
    try:
        await KeyStore(redis, config.keys).create("acme-app", "app", "acme")
        acme = QueueEngine(
            redis, dataclasses.replace(config, keys=config.keys.for_namespace("acme"))
        )
        default = QueueEngine(redis, config)
        jobs = [await e.enqueue("f", 1, delay_ms=50) for e in (acme, default)]

        async def promoted() -> None:
            while (await acme.get_job(jobs[0].id)).status != "queued" or (
                await default.get_job(jobs[1].id)
            ).status != "queued":
                await asyncio.sleep(0.02)

        await asyncio.wait_for(promoted(), 5.0)
    finally:
        stop.set()
        await serving
