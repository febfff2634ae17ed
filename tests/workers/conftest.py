"""Fixtures for worker and client tests: the real API app served by uvicorn on a free
port (in a thread of this process, with its own event loop), talking to the session's
Redis server under the test's own key prefix, plus an orchestrator for retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from worker_helpers import ApiServer, settings

from tether import AsyncClient
from tether.api.settings import ApiSettings
from tether.orchestrator.loop import Orchestrator
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.workers import Worker


@pytest.fixture
def api_settings(redis_url: str, keys: Keys) -> ApiSettings:
    return ApiSettings(redis_url=redis_url, prefix=keys.prefix, recheck_interval=0.2)


@pytest.fixture
def api(api_settings: ApiSettings) -> Iterator[ApiServer]:
    server = ApiServer(api_settings).start()
    yield server
    server.stop()


@pytest.fixture
async def client(api: ApiServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(api.url, timeout=10) as c:
        yield c


@pytest.fixture
async def orchestrator(engine: QueueEngine) -> AsyncIterator[Orchestrator]:
    """Promotes retries when due and reaps leases, as `tether orchestrator` would."""
    orch = Orchestrator(engine, interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(orch.run(stop))
    yield orch
    stop.set()
    await task


@pytest.fixture
def make_worker(api: ApiServer) -> Callable[..., Worker]:
    def make(*functions: Any, **options: Any) -> Worker:
        return Worker(settings(*functions, **options), url=api.url)

    return make
