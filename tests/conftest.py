"""Shared fixtures: one real Redis server for the session, a fresh key prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.redis_server import RedisServer, ServerBinaryNotFound, find_server_binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        find_server_binary()
    except ServerBinaryNotFound:
        if os.environ.get("CI"):
            raise
        pytest.skip("no Redis server binary on this machine")
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    """A fresh hash-tag prefix, so tests never see each other's keys."""
    return Keys(prefix=f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def config(keys: Keys) -> QueueConfig:
    return QueueConfig(keys=keys)


@pytest.fixture
def engine(redis: Redis, config: QueueConfig) -> QueueEngine:
    return QueueEngine(redis, config)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
