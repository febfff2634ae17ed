"""Fixtures of the API tests: the app on the session's Redis, with a fresh key prefix and
client name per test, driven in-process through httpx's ASGI transport. Authentication
is on: ``client`` carries the test's admin key (``test_keys`` has one of each role)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import Register, client_for, running
from auth_helpers import TestKeys
from litestar import Litestar

from tether.api.app import create_app
from tether.api.notify import Notifier
from tether.api.settings import ApiSettings
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys


@pytest.fixture
def settings(redis_url: str, keys: Keys) -> ApiSettings:
    return ApiSettings(
        redis_url=redis_url,
        prefix=keys.prefix,
        client_name=f"api-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
async def app(settings: ApiSettings) -> AsyncIterator[Litestar]:
    """The app with its lifespan entered (Redis clients open, notifier subscribed)."""
    application = create_app(settings)
    async with running(application):
        notifier: Notifier = application.state.notifier
        assert await notifier.wait_connected(5.0), "notification subscription never came up"
        yield application


@pytest.fixture
async def client(app: Litestar, test_keys: TestKeys) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, test_keys.admin) as c:
        yield c


@pytest.fixture
def api_engine(app: Litestar) -> QueueEngine:
    """The app's own engine (same keys, same pool)."""
    engine: QueueEngine = app.state.engine
    return engine


@pytest.fixture
def notifier(app: Litestar) -> Notifier:
    n: Notifier = app.state.notifier
    return n


@pytest.fixture
def register(client: httpx.AsyncClient) -> Register:
    """Heartbeat a machine serving some functions, as a worker's first call does."""

    async def go(*functions: str, machine: str = "m1", **spec: Any) -> dict[str, Any]:
        body = {"functions": [{"name": fn, **spec} for fn in functions]}
        response = await client.post(f"/v1/machines/{machine}/heartbeat", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    return go


@pytest.fixture
def api_headers(test_keys: TestKeys) -> dict[str, str]:
    """Headers every request of a test that uses this fixture sends: the test's admin
    key (the schemathesis run over the OpenAPI document takes them)."""
    return test_keys.headers("admin")
