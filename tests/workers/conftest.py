"""Fixtures for worker and client tests: the real API app served by uvicorn on a free
port (in a thread of this process, with its own event loop), talking to the session's
Redis server under the test's own key prefix (fixtures api, client and orchestrator are in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_server import ApiServer
from worker_helpers import settings

from tether.workers import Worker


@pytest.fixture
def make_worker(api: ApiServer) -> Callable[..., Worker]:
    def make(*functions: Any, **options: Any) -> Worker:
        # Workers carry the machine key; the test's clients the admin key.
        assert api.keys is not None
        options.setdefault("api_key", api.keys.machine)
        return Worker(settings(*functions, **options), url=api.url)

    return make
