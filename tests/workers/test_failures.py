"""Failed attempts: retries up to max_tries, then dead; timeouts; non-retryable errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tether import AsyncClient, NonRetryable, func
from tether.orchestrator.loop import Orchestrator
from tether.workers import Worker

pytestmark = pytest.mark.usefixtures("orchestrator")


async def flaky(ctx: dict[str, Any]) -> None:
    raise ValueError(f"boom on try {ctx['job_try']}")


async def refuses(ctx: dict[str, Any]) -> None:
    raise NonRetryable("this input can never work")


async def sleeps(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(60)


async def test_an_exception_is_retried_up_to_max_tries_then_the_job_is_dead(
    client: AsyncClient, make_worker: Callable[..., Worker], orchestrator: Orchestrator
) -> None:
    async with make_worker(func(flaky, max_tries=2)):
        job = await client.enqueue("flaky")
        done = await client.wait(job.id, wait=20)
    assert (done.status, done.attempt, done.max_attempts) == ("dead", 2, 2)
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("ValueError", "boom on try 2")
    assert "raise ValueError" in (done.error.traceback or "")


async def test_a_non_retryable_error_fails_the_job_after_one_attempt(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(func(refuses, max_tries=5)):
        job = await client.enqueue("refuses")
        done = await client.wait(job.id, wait=10)
    assert (done.status, done.attempt) == ("failed", 1)
    assert done.error is not None and done.error.message == "this input can never work"


async def test_a_job_running_past_its_timeout_is_stopped_and_fails(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(func(sleeps, timeout=0.2, max_tries=1)) as worker:
        job = await client.enqueue("sleeps")
        done = await client.wait(job.id, wait=10)
        assert worker.executor is not None and not worker.executor.running
    assert done.status == "dead"
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("TimeoutError", "timed out after 0.2s")


async def test_a_job_timeout_set_at_enqueue_applies_too(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(func(sleeps, max_tries=1)):
        job = await client.enqueue("sleeps", timeout=0.2)
        done = await client.wait(job.id, wait=10)
    assert done.error is not None and done.error.type == "TimeoutError"
