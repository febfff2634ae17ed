"""One orchestrator per namespace, in one process: every namespace a key was made for
(the set ``Keys.namespaces``, re-read every ``discover_every`` seconds) gets its own
``Orchestrator`` loop over its own keys, so a tenant's timers and dead machines are
served however many tenants there are. Each loop costs the same Redis work per pass as a
single-tenant orchestrator; namespaces with nothing due cost a few cheap commands each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable

from tether.errors import RedisUnavailable
from tether.orchestrator.loop import Orchestrator
from tether.queue.apikeys import KeyStore
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.redis_py import Client

log = logging.getLogger("tether.orchestrator")


async def serve_namespaces(
    redis: Client,
    config: QueueConfig,
    stop: asyncio.Event,
    *,
    interval: float = 0.1,
    discover_every: float = 2.0,
    build: Callable[[QueueEngine, float], Orchestrator] | None = None,
) -> None:
    """Run an orchestrator loop for every namespace until ``stop`` is set."""
    store = KeyStore(redis, config.keys)
    loops: dict[str, asyncio.Task[None]] = {}
    try:
        while not stop.is_set():
            try:
                namespaces = await store.namespaces()
            except RedisUnavailable as exc:
                log.warning("Redis unavailable, cannot list namespaces: %s", exc)
                namespaces = list(loops) or ["default"]
            for ns in namespaces:
                if ns not in loops:
                    keys = config.keys.for_namespace(ns)
                    engine = QueueEngine(redis, dataclasses.replace(config, keys=keys))
                    orch = (
                        build(engine, interval)
                        if build is not None
                        else Orchestrator(engine, interval=interval)  # adds the run passes
                    )
                    loops[ns] = asyncio.create_task(orch.run(stop), name=f"orchestrator-{ns}")
                    log.info("serving namespace %s", ns)
            for task in loops.values():
                if task.done() and not stop.is_set():
                    task.result()  # a loop that crashed takes the process down with it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=discover_every)
    finally:
        stop.set()
        for task in loops.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
