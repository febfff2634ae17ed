"""Fixtures of the workflow tests: a RunEngine next to the queue engine, and machines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from wf_helpers import ApiServer, Machine

from tether import AsyncClient
from tether.api.settings import ApiSettings
from tether.orchestrator.loop import Orchestrator
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.runs import RunEngine
from tether.workers.workflow import Workflow


@pytest.fixture
def runs(redis: Redis, config: QueueConfig) -> RunEngine:
    return RunEngine(redis, config)


@pytest.fixture
def machine_factory(engine: QueueEngine, runs: RunEngine) -> Callable[..., Machine]:
    def make(
        workflows: Sequence[Workflow] = (),
        functions: dict[str, Any] | None = None,
        name: str = "m1",
    ) -> Machine:
        return Machine(engine, runs, workflows, functions or {}, name)

    return make


@pytest.fixture
def api(redis_url: str, keys: Keys) -> Iterator[ApiServer]:
    server = ApiServer(
        ApiSettings(redis_url=redis_url, prefix=keys.prefix, recheck_interval=0.2)
    ).start()
    yield server
    server.stop()


@pytest.fixture
async def client(api: ApiServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(api.url, timeout=10) as c:
        yield c


@pytest.fixture
async def orchestrator(engine: QueueEngine) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(engine, interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(orch.run(stop))
    yield orch
    stop.set()
    await task
