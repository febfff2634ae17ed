"""Cancellation of running jobs, graceful shutdown, and an API that is not there yet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from api_server import ApiServer
from worker_helpers import settings, watch_log

from tether import AsyncClient
from tether.api.settings import ApiSettings
from tether.workers import Worker


class Blocker:
    """A job function that blocks until released, recording what happened to it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, ctx: dict[str, Any]) -> str:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "finished"


def blocker_func(blocker: Blocker) -> Any:
    from tether import func

    return func(blocker, name="block")


async def test_cancelling_a_running_job_cancels_its_task_and_ends_it_cancelled(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    blocker = Blocker()
    async with make_worker(blocker_func(blocker)):
        job = await client.enqueue("block")
        await blocker.started.wait()
        asked = await client.cancel(job.id)
        await blocker.cancelled.wait()
        done = await client.wait(job.id, wait=10)
    assert (asked.status, asked.cancel_requested) == ("running", True)
    assert done.status == "cancelled"


async def test_stopping_releases_unfinished_jobs_so_they_run_elsewhere_at_once(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    first = Blocker()
    worker = make_worker(blocker_func(first), shutdown_grace=0.05)
    async with worker:
        job = await client.enqueue("block")
        await first.started.wait()
    released = await client.get(job.id)
    assert first.cancelled.is_set()
    assert (released.status, released.attempt) == ("queued", 0)

    second = Blocker()
    second.release.set()
    async with make_worker(blocker_func(second)):
        done = await client.wait(job.id, wait=10)
    assert (done.status, done.result, done.attempt) == ("completed", "finished", 1)


async def test_stopping_lets_jobs_finish_within_the_grace_period(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    blocker = Blocker()
    worker = make_worker(blocker_func(blocker), shutdown_grace=30)
    async with worker:
        job = await client.enqueue("block")
        await blocker.started.wait()
        worker.stop()
        blocker.release.set()  # finishes during the grace period
    done = await client.get(job.id)
    assert (done.status, done.result) == ("completed", "finished")
    assert not blocker.cancelled.is_set()


async def test_a_worker_that_stops_gracefully_deregisters_so_it_is_not_declared_dead(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    blocker = Blocker()
    worker = make_worker(blocker_func(blocker))
    async with worker:
        assert [m.id for m in await client.machines()] == [worker.machine_id]
    # Off the live list at once: nothing left for the orchestrator to declare dead.
    assert await client.machines() == []


async def test_a_worker_started_before_the_api_retries_and_works_once_it_is_up(
    api_settings: ApiSettings,
) -> None:
    async def echo(ctx: dict[str, Any], value: Any) -> Any:
        return value

    late = ApiServer(api_settings)  # not started: nothing listens on its port yet
    worker = Worker(settings(echo), url=late.url)
    with watch_log("tether.worker", "registering with the API failed") as failing:
        runner = asyncio.create_task(worker.run())
        await failing.seen.wait()
    late.start()
    try:
        await worker.started.wait()
        async with AsyncClient(late.url) as client:
            assert await client.call("echo", {"a": 1}, wait=10) == {"a": 1}
    finally:
        worker.stop()
        await runner
        late.stop()
