"""Shared fixtures: one real Redis server for the session, a fresh key prefix per test.

With ``TETHER_TEST_CLUSTER=1`` (``make test-cluster``) the session's server is a Redis
Cluster of 3 primaries started here (``tether.redis_server.RedisCluster``) and
``redis_url`` is its ``redis+cluster://`` URL; tests marked ``single_node`` (they need
one server's own commands, such as CLIENT KILL or CONFIG SET, or start servers of their
own) are skipped there.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import litestar.exceptions
import pytest
from api_server import ApiServer
from auth_helpers import TestKeys, create_keys_sync

from tether import AsyncClient
from tether.api.settings import ApiSettings
from tether.orchestrator.loop import Orchestrator
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import Client, redis_client
from tether.redis_server import RedisCluster, RedisServer, ServerBinaryNotFound, find_server_binary

CLUSTER = os.environ.get("TETHER_TEST_CLUSTER", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    # Litestar 2.25 warns about the handler styles Litestar 3 will drop (inferred path
    # parameters and dependencies); the move to its new markers is tracked, not urgent.
    # The warning class is newer than Litestar 2.17, our lower bound.
    if hasattr(litestar.exceptions, "LitestarDeprecationWarning"):
        config.addinivalue_line(
            "filterwarnings", "ignore::litestar.exceptions.LitestarDeprecationWarning"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not CLUSTER:
        return
    for item in items:
        marker = item.get_closest_marker("single_node")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"single node only: {reason}"))


@pytest.fixture(scope="session")
def redis_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisServer | RedisCluster]:
    try:
        find_server_binary()
    except ServerBinaryNotFound:
        if os.environ.get("CI"):
            raise
        pytest.skip("no Redis server binary on this machine")
    server: RedisServer | RedisCluster
    if CLUSTER:
        server = RedisCluster(tmp_path_factory.mktemp("cluster"), masters=3).start()
    else:
        server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer | RedisCluster) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_server: RedisServer | RedisCluster) -> AsyncIterator[Client]:
    client = redis_client(redis_server.url, decode_responses=True)
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
def engine(redis: Client, config: QueueConfig) -> QueueEngine:
    return QueueEngine(redis, config)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def test_keys(redis_url: str, keys: Keys) -> TestKeys:
    """An API key of each role (names ``test-<role>``) in this test's deployment."""
    return create_keys_sync(redis_url, keys.prefix)


@pytest.fixture
def api_settings(
    redis_url: str, keys: Keys, test_keys: TestKeys, monkeypatch: pytest.MonkeyPatch
) -> ApiSettings:
    """Settings of an API with authentication on. $TETHER_API_KEY is the admin key for
    the test, so clients and workers made without a key still get in (make_worker
    hands workers the machine key)."""
    monkeypatch.setenv("TETHER_API_KEY", test_keys.admin)
    return ApiSettings(redis_url=redis_url, prefix=keys.prefix, recheck_interval=0.2)


@pytest.fixture
def api(api_settings: ApiSettings, test_keys: TestKeys) -> Iterator[ApiServer]:
    """The real API app, served over HTTP in this process, on this test's keys;
    ``api.keys`` holds a key of each role, ``api.headers()`` the admin's header."""
    server = ApiServer(api_settings, keys=test_keys).start()
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
