"""Python ``logging`` inside jobs and workflows: captured by the worker with the job's
(and run's, step's) ids, shipped without blocking the job, stored per job and run,
and read back paged or followed (tether/workers/logs.py, tether/api/logs.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow

pytestmark = pytest.mark.usefixtures("orchestrator")

app_log = logging.getLogger("app.jobs")


async def chatty(ctx: dict[str, Any], n: int) -> int:
    for i in range(n):
        app_log.info("line %d of %s", i, ctx["job_id"])
    return n


def chatty_sync(ctx: dict[str, Any], n: int) -> int:
    for i in range(n):
        app_log.warning("sync line %d in %s", i, threading.current_thread().name)
    return n


async def broken(ctx: dict[str, Any]) -> None:
    try:
        raise ValueError("bad thing")
    except ValueError:
        app_log.exception("it broke")


async def all_lines(client: AsyncClient, id: str, *, run: bool = False) -> list[Any]:
    lines = []
    async for line in client.follow_logs(id, run=run, wait=5):
        lines.append(line)
    return lines


async def test_lines_logged_in_a_job_are_stored_with_its_id_level_logger_and_attempt(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(chatty):
        job = await client.enqueue("chatty", 3)
        await client.wait(job.id, wait=20)
        lines = await all_lines(client, job.id)

    assert [line.message for line in lines] == [f"line {i} of {job.id}" for i in range(3)]
    first = lines[0]
    assert (first.job, first.level, first.logger, first.attempt) == (job.id, "INFO", "app.jobs", 1)
    assert first.source == "logging" and first.ts is not None


async def test_a_logged_exception_keeps_its_traceback(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(broken):
        job = await client.enqueue("broken")
        await client.wait(job.id, wait=20)
        (line,) = await all_lines(client, job.id)

    assert line.level == "ERROR" and line.message == "it broke"
    assert line.exc is not None and "ValueError: bad thing" in line.exc


async def test_a_sync_function_running_in_a_thread_has_its_lines_captured(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(chatty_sync):
        job = await client.enqueue("chatty_sync", 2)
        await client.wait(job.id, wait=20)
        lines = await all_lines(client, job.id)

    assert [line.message.split(" in ")[0] for line in lines] == ["sync line 0", "sync line 1"]
    assert all(line.job == job.id for line in lines)


async def test_concurrent_jobs_in_one_worker_never_mix_their_lines(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async def interleaved(ctx: dict[str, Any], n: int) -> None:
        for i in range(n):
            app_log.info("%s says %d", ctx["job_id"], i)
            await asyncio.sleep(0)  # hand over to the other jobs between lines

    async with make_worker(interleaved, max_jobs=8):
        jobs = [await client.enqueue("interleaved", 20) for _ in range(8)]
        for job in jobs:
            await client.wait(job.id, wait=20)
        for job in jobs:
            lines = await all_lines(client, job.id)
            assert [line.message for line in lines] == [f"{job.id} says {i}" for i in range(20)]


async def test_lines_logged_outside_any_job_are_not_captured(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(chatty) as worker:
        app_log.warning("the application's own line, not a job's")
        job = await client.enqueue("chatty", 1)
        await client.wait(job.id, wait=20)
        await all_lines(client, job.id)
        assert worker.logs is not None
        assert worker.logs.shipped == 1


async def test_a_full_buffer_drops_lines_counts_them_and_the_job_logs_say_so(
    client: AsyncClient, make_worker: Callable[..., Worker], api: ApiServer
) -> None:
    async with make_worker(chatty, log_buffer=5) as worker:
        job = await client.enqueue("chatty", 12)
        done = await client.wait(job.id, wait=20)
        page = await client.logs(job.id)

    assert done.status == "completed"  # a full buffer never holds a job up
    assert [line.message for line in page.lines] == [f"line {i} of {job.id}" for i in range(5)]
    assert page.dropped == 7
    assert worker.logs is not None and worker.logs.dropped == 7
    metrics = await client.metrics()
    assert 'tether_log_lines_dropped_total{reason="buffer"} 7.0' in metrics


async def test_lines_ride_the_result_request_of_a_short_job(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(chatty) as worker:
        for _ in range(3):
            job = await client.enqueue("chatty", 10)
            await client.wait(job.id, wait=20)
        assert worker.logs is not None
        assert worker.logs.shipped == 30
        assert worker.logs.requests == 0  # no request of their own


async def test_lines_of_a_job_still_running_are_readable_before_it_ends(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    release = asyncio.Event()

    async def slow(ctx: dict[str, Any]) -> None:
        app_log.info("started")
        await release.wait()
        app_log.info("finished")

    async with make_worker(slow):
        job = await client.enqueue("slow")
        page = await client.logs(job.id, wait=10)
        release.set()
        rest = await all_lines(client, job.id)

    assert [line.message for line in page.lines] == ["started"]
    assert [line.message for line in rest] == ["started", "finished"]


@workflow(name="logged_flow")
async def logged_flow(ctx: WorkflowContext, n: int) -> int:
    logging.getLogger("app.flow").info("begin %d", n)

    def work() -> int:
        logging.getLogger("app.flow").info("inside the step")
        return n + 1

    value: int = await ctx.step("work", work)
    ctx.log("noted", value=value)
    await ctx.sleep(0.01)  # a second activation replays 'begin': not logged again
    logging.getLogger("app.flow").info("end %d", value)
    return value


async def test_a_workflow_logs_to_its_run_with_steps_and_ctx_log_and_no_replayed_lines(
    client: AsyncClient, api: ApiServer
) -> None:
    # No run kept in memory: the second activation replays the first's code.
    settings = {"workflows": [logged_flow], "shutdown_grace": 1.0, "max_cached_runs": 0}
    assert api.keys is not None
    async with Worker(settings, url=api.url, api_key=api.keys.machine):
        run = await client.start("logged_flow", 1)
        assert await client.result(run.id, wait=20) == 2
        lines = await all_lines(client, run.id, run=True)

    assert [(line.source, line.message) for line in lines] == [
        ("logging", "begin 1"),
        ("logging", "inside the step"),
        ("ctx", "noted"),
        ("logging", "end 2"),
    ]
    step_line = lines[1]
    assert (step_line.run, step_line.step, step_line.step_name) == (run.id, 0, "work")
    assert lines[0].job == f"{run.id}:a1" and lines[3].job == f"{run.id}:a2"
    assert lines[2].fields == {"value": 2}


async def test_a_stopping_worker_ships_the_lines_of_jobs_it_hands_back(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    started = asyncio.Event()

    async def forever(ctx: dict[str, Any]) -> None:
        app_log.info("working on it")
        started.set()
        await asyncio.Event().wait()

    worker = make_worker(forever, shutdown_grace=0.1)
    async with worker:
        job = await client.enqueue("forever")
        async with asyncio.timeout(10):
            await started.wait()
    # Stopped at once (its linger not yet up): the line left with the shutdown's flush.
    page = await client.logs(job.id)

    assert [line.message for line in page.lines] == ["working on it"]
    assert worker.logs is not None and worker.logs.held == 0


async def test_a_run_kept_in_memory_between_activations_logs_to_its_run_in_order(
    client: AsyncClient, api: ApiServer
) -> None:
    settings = {"workflows": [logged_flow], "shutdown_grace": 1.0}  # sticky replay on
    assert api.keys is not None
    async with Worker(settings, url=api.url, api_key=api.keys.machine):
        run = await client.start("logged_flow", 1)
        assert await client.result(run.id, wait=20) == 2
        lines = await all_lines(client, run.id, run=True)

    assert [line.message for line in lines] == ["begin 1", "inside the step", "noted", "end 2"]
    assert all(line.run == run.id for line in lines)
