"""Every job that ends on a worker other than completed logs one line: its id, function,
attempt, what happened, why, and what the job becomes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tether import AsyncClient, NonRetryable, func
from tether.workers import Worker

pytestmark = pytest.mark.usefixtures("orchestrator")


def lines_about(caplog: pytest.LogCaptureFixture, job_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tether.worker" and job_id in r.getMessage()
    ]


@pytest.fixture(autouse=True)
def worker_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tether.worker")


async def test_a_timeout_logs_one_line_with_the_limit_and_what_follows(
    client: AsyncClient, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    async def nap(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(60)

    async with make_worker(func(nap, timeout=0.2, max_tries=1)):
        job = await client.enqueue("nap")
        done = await client.wait(job.id, wait=20)
    assert done.status == "dead"
    assert lines_about(caplog, job.id) == [
        f"job {job.id} (nap) attempt 1/1: timed out, no attempt left (ends dead): "
        "timed out after 0.2s"
    ]


async def test_an_input_error_logs_one_line_naming_the_bad_field(
    client: AsyncClient, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    async def double(ctx: dict[str, Any], n: int) -> int:
        return 2 * n

    async with make_worker(double):
        # A string passes the API's check (pydantic converts "4"), then fails to convert.
        job = await client.enqueue("double", "many")
        done = await client.wait(job.id, wait=20)
    assert done.status == "failed"
    assert lines_about(caplog, job.id) == [
        f"job {job.id} (double) attempt 1/5: input error, not retried (ends failed): "
        "InputError: invalid input for double: n: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


async def test_each_failed_attempt_logs_one_line_and_the_last_says_the_job_is_dead(
    client: AsyncClient, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    async def flaky(ctx: dict[str, Any]) -> None:
        raise ValueError(f"boom on try {ctx['job_try']}")

    async with make_worker(func(flaky, max_tries=2)):
        job = await client.enqueue("flaky")
        await client.wait(job.id, wait=20)
    assert lines_about(caplog, job.id) == [
        f"job {job.id} (flaky) attempt 1/2: failed, will be retried: ValueError: boom on try 1",
        f"job {job.id} (flaky) attempt 2/2: failed, no attempt left (ends dead): "
        "ValueError: boom on try 2",
    ]


async def test_a_non_retryable_error_logs_one_line(
    client: AsyncClient, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    async def refuses(ctx: dict[str, Any]) -> None:
        raise NonRetryable("this input can never work")

    async with make_worker(refuses):
        job = await client.enqueue("refuses")
        await client.wait(job.id, wait=20)
    assert lines_about(caplog, job.id) == [
        f"job {job.id} (refuses) attempt 1/5: failed, not retried (ends failed): "
        "NonRetryable: this input can never work"
    ]


async def test_a_cancelled_job_logs_one_line(
    client: AsyncClient, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()

    async def block(ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(60)

    async with make_worker(block):
        job = await client.enqueue("block")
        await started.wait()
        await client.cancel(job.id)
        done = await client.wait(job.id, wait=20)
    assert done.status == "cancelled"
    assert lines_about(caplog, job.id) == [
        f"job {job.id} (block) attempt 1/5: cancelled: the API asked (a cancel request)"
    ]


async def test_a_job_released_by_a_stopping_worker_logs_one_line(
    client: AsyncClient, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()

    async def block(ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(60)

    async with make_worker(block, shutdown_grace=0.05):
        job = await client.enqueue("block")
        await started.wait()
    assert lines_about(caplog, job.id) == [
        f"job {job.id} (block) attempt 1/5: released: this worker is stopping; it runs elsewhere"
    ]
