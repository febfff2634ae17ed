"""Fixtures of the workflow tests: a RunEngine next to the queue engine, and machines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from wf_helpers import Machine

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
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
        specs: dict[str, dict[str, Any]] | None = None,
        known: Sequence[str] = (),
    ) -> Machine:
        return Machine(engine, runs, workflows, functions or {}, name, specs or {}, known)

    return make
