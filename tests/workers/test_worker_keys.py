"""Workers carry their key: a wrong or revoked one, or a key that may not serve the
worker's functions, stops the worker at its first heartbeat with the API's own error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from api_server import ApiServer
from redis.asyncio import Redis

from tether.errors import Forbidden, Unauthorized
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys
from tether.workers import Worker


async def add(ctx: dict[str, Any], x: int) -> int:
    return x + 1


async def test_a_worker_with_a_wrong_key_stops_with_401(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker(add, api_key="tk_wrong")

    with pytest.raises(Unauthorized):
        await asyncio.wait_for(worker.run(), 10)


async def test_a_worker_whose_key_may_not_serve_its_functions_stops_with_403(
    make_worker: Callable[..., Worker], redis: Redis, keys: Keys
) -> None:
    key, _ = await KeyStore(redis, keys).create("billing", "machine", functions=["billing.*"])
    worker = make_worker(add, api_key=key)

    with pytest.raises(Forbidden):
        await asyncio.wait_for(worker.run(), 10)


async def test_a_worker_runs_jobs_with_its_machine_key(
    make_worker: Callable[..., Worker], api: ApiServer, client: Any
) -> None:
    async with make_worker(add):
        assert await client.call("add", 41, wait=10) == 42
