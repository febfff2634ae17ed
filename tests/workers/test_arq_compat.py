"""An arq app runs unchanged: its WorkerSettings, its functions and hooks, its enqueuing
code with one import changed (``from tether.arq import create_pool``).

arq itself pins redis-py below 6, so it cannot live in this venv: here arq's objects are
small look-alikes with arq's attribute names (tether reads them by attribute), and
tests/arq/ runs the same kind of app with the real arq in .venv-arq (``make test-arq``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_server import ApiServer

from tether import JobFailed, ResultTimeout
from tether.arq import ArqPool, Job, JobDef, JobResult, JobStatus, create_pool
from tether.orchestrator.loop import Orchestrator
from tether.workers import Worker, load_settings

# -- look-alikes of arq's objects (attribute names as in arq 0.26) ----------------------


@dataclass
class Function:  # arq.worker.Function, as arq.func(...) makes it
    name: str
    coroutine: Any
    timeout_s: float | None
    keep_result_s: float | None
    keep_result_forever: bool | None
    max_tries: int | None


def func(
    coroutine: Any, *, name: str | None = None, timeout: Any = None, max_tries: Any = None
) -> Function:
    return Function(name or coroutine.__qualname__, coroutine, timeout, None, None, max_tries)


class Retry(RuntimeError):  # arq.worker.Retry
    def __init__(self, defer: float | None = None) -> None:
        self.defer_score = round(defer * 1000) if defer is not None else None


class RedisSettings:  # arq.connections.RedisSettings
    host = "localhost"
    port = 6379


# -- the app, as an arq user writes it --------------------------------------------------

events: list[str] = []


async def startup(ctx: dict[str, Any]) -> None:
    ctx["session"] = "open"
    events.append("startup")


async def shutdown(ctx: dict[str, Any]) -> None:
    events.append("shutdown")


async def job_start(ctx: dict[str, Any]) -> None:
    events.append(f"start {ctx['job_id']}")


async def job_end(ctx: dict[str, Any]) -> None:
    events.append(f"end {ctx['job_id']}")


async def download(ctx: dict[str, Any], url: str, *, retries: int = 0) -> dict[str, Any]:
    return {"url": url, "retries": retries, "session": ctx["session"]}


async def add(ctx: dict[str, Any], a: int, b: int, *more: int) -> int:
    return a + b + sum(more)


async def describe(ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": ctx["job_id"],
        "job_try": ctx["job_try"],
        "enqueue_time": ctx["enqueue_time"].isoformat(),
        "aware": ctx["enqueue_time"].tzinfo is not None,
    }


async def flaky(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.2)
    return ctx["job_try"]


async def slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(30)


async def broken(ctx: dict[str, Any]) -> None:
    raise ValueError("no such thing")


class WorkerSettings:
    functions = [download, add, describe, func(flaky, max_tries=5), func(slow, timeout=60), broken]
    on_startup = startup
    on_shutdown = shutdown
    on_job_start = job_start
    on_job_end = job_end
    max_jobs = 4
    job_timeout = timedelta(seconds=20)
    max_tries = 2
    keep_result = 3600
    queue_name = "arq:queue"
    redis_settings = RedisSettings()
    health_check_interval = 60  # an arq setting tether has no use for: ignored


@pytest.fixture
async def worker(api: ApiServer) -> AsyncIterator[Worker]:
    events.clear()
    async with Worker(WorkerSettings, url=api.url) as w:
        await w.started.wait()
        yield w


@pytest.fixture
async def pool(api: ApiServer) -> AsyncIterator[ArqPool]:
    redis = await create_pool(RedisSettings(), url=api.url)
    yield redis
    await redis.close()


# -- settings ---------------------------------------------------------------------------


def test_an_arq_worker_settings_class_loads_as_written() -> None:
    config = load_settings(WorkerSettings)

    assert (config.max_jobs, config.job_timeout, config.max_tries) == (4, 20.0, 2)
    assert config.on_job_start is job_start and config.on_job_end is job_end


async def test_arq_func_wrappers_keep_their_own_timeout_and_tries(
    worker: Worker, pool: ArqPool
) -> None:
    functions = {f.name: f for f in await pool.client.functions()}

    assert (functions["flaky"].name, functions["slow"].name) == ("flaky", "slow")
    specs = {s.name: s for s in worker.registry.specs}
    assert (specs["flaky"].max_attempts, specs["flaky"].timeout) == (5, 20.0)
    assert (specs["slow"].max_attempts, specs["slow"].timeout) == (2, 60.0)


# -- enqueue_job and the job handle -----------------------------------------------------


async def test_positional_and_keyword_arguments_reach_the_function_as_arq_passes_them(
    worker: Worker, pool: ArqPool
) -> None:
    job = await pool.enqueue_job("download", "https://example.com", retries=3)
    assert job is not None

    assert await job.result(timeout=10) == {
        "url": "https://example.com",
        "retries": 3,
        "session": "open",
    }


async def test_extra_positional_arguments_reach_star_args(worker: Worker, pool: ArqPool) -> None:
    job = await pool.enqueue_job("add", 1, 2, 3, 4)
    assert job is not None

    assert await job.result(timeout=10) == 10


async def test_ctx_has_job_id_job_try_and_enqueue_time(worker: Worker, pool: ArqPool) -> None:
    before = datetime.now(UTC)
    job = await pool.enqueue_job("describe")
    assert job is not None

    seen = await job.result(timeout=10)

    assert seen["job_id"] == job.job_id and seen["job_try"] == 1 and seen["aware"]
    enqueued = datetime.fromisoformat(seen["enqueue_time"])
    assert abs((enqueued - before).total_seconds()) < 5


async def test_hooks_run_around_each_job_and_at_start_and_stop(
    api: ApiServer, pool: ArqPool
) -> None:
    events.clear()
    async with Worker(WorkerSettings, url=api.url) as w:
        await w.started.wait()
        job = await pool.enqueue_job("add", 1, 1)
        assert job is not None
        await job.result(timeout=10)

    assert events == ["startup", f"start {job.job_id}", f"end {job.job_id}", "shutdown"]


async def test_retry_with_defer_runs_the_job_again_after_that_delay(
    worker: Worker, pool: ArqPool, orchestrator: Orchestrator
) -> None:
    job = await pool.enqueue_job("flaky")
    assert job is not None

    assert await job.result(timeout=15) == 3
    info = await job.info()
    assert isinstance(info, JobResult) and info.job_try == 3 and info.success


async def test_a_job_id_already_used_enqueues_nothing_and_answers_none(
    worker: Worker, pool: ArqPool
) -> None:
    first = await pool.enqueue_job("add", 1, 2, _job_id="sum-1")
    second = await pool.enqueue_job("add", 5, 5, _job_id="sum-1")

    assert first is not None and second is None
    assert await first.result(timeout=10) == 3


async def test_a_job_id_reused_with_the_same_arguments_answers_none(
    worker: Worker, pool: ArqPool
) -> None:
    first = await pool.enqueue_job("add", 1, 2, _job_id="same")
    second = await pool.enqueue_job("add", 1, 2, _job_id="same")

    assert first is not None and second is None


async def test_a_job_id_reused_for_another_function_answers_none(
    worker: Worker, pool: ArqPool
) -> None:
    first = await pool.enqueue_job("add", 1, 2, _job_id="fn-swap")
    second = await pool.enqueue_job("download", "u", _job_id="fn-swap")

    assert first is not None and second is None


async def test_racing_enqueues_of_one_new_job_id_give_one_job_and_nones(
    worker: Worker, pool: ArqPool
) -> None:
    jobs = await asyncio.gather(*(pool.enqueue_job("add", 1, 2, _job_id="race") for _ in range(8)))

    assert sum(job is not None for job in jobs) == 1


async def test_expires_ends_a_job_not_started_in_time_as_complete_and_failed(
    worker: Worker, pool: ArqPool, orchestrator: Orchestrator
) -> None:
    job = await pool.enqueue_job("add", 1, 2, _defer_by=60, _expires=0.3)
    assert job is not None

    with pytest.raises(JobFailed, match="Expired"):
        await job.result(timeout=10)
    assert await job.status() == JobStatus.complete
    info = await job.info()
    assert isinstance(info, JobResult) and not info.success
    assert (await pool.client.get(job.job_id)).status == "expired"


async def test_a_job_started_in_time_runs_whatever_its_expires(
    worker: Worker, pool: ArqPool
) -> None:
    job = await pool.enqueue_job("add", 1, 2, _expires=timedelta(minutes=5))
    assert job is not None

    assert await job.result(timeout=10) == 3


async def test_without_expires_a_job_expires_a_day_after_it_was_due_as_in_arq(
    worker: Worker, pool: ArqPool
) -> None:
    job = await pool.enqueue_job("add", 1, 2, _defer_by=timedelta(hours=1))
    assert job is not None

    record = await pool.client.get(job.job_id)
    assert record.expires_at is not None and record.enqueued_at is not None
    assert record.expires_at - record.enqueued_at == timedelta(hours=25)


async def test_expires_extra_ms_of_zero_turns_the_default_expiry_off(
    worker: Worker, api: ApiServer
) -> None:
    async with await create_pool(RedisSettings(), url=api.url, expires_extra_ms=0) as pool:
        job = await pool.enqueue_job("add", 1, 2)
        assert job is not None
        assert (await pool.client.get(job.job_id)).expires_at is None


async def test_a_queue_name_other_than_arqs_default_is_ignored_with_a_warning(
    worker: Worker, pool: ArqPool
) -> None:
    with pytest.warns(UserWarning, match="queue name 'other:queue' is ignored"):
        job = await pool.enqueue_job("add", 1, 2, _queue_name="other:queue")

    assert job is not None
    assert await job.result(timeout=10) == 3  # served by the worker of the default queue


async def test_a_worker_settings_queue_name_other_than_arqs_default_is_logged_as_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class OtherQueue(WorkerSettings):
        queue_name = "shop:queue"

    with caplog.at_level("WARNING", logger="tether.worker"):
        load_settings(OtherQueue)

    assert "queue_name 'shop:queue' is ignored" in caplog.text


async def test_a_deferred_job_is_deferred_until_its_time(worker: Worker, pool: ArqPool) -> None:
    by = await pool.enqueue_job("add", 1, 2, _defer_by=timedelta(minutes=5))
    until = await pool.enqueue_job(
        "add", 1, 2, _defer_until=datetime.now(UTC) + timedelta(minutes=5)
    )
    assert by is not None and until is not None

    assert await by.status() == JobStatus.deferred
    assert await until.status() == JobStatus.deferred
    info = await by.info()
    assert isinstance(info, JobDef) and info.args == (1, 2) and info.kwargs == {}
    assert info.score is not None and info.score > datetime.now(UTC).timestamp() * 1000 + 200_000


async def test_a_failed_job_raises_from_result_with_its_error(
    worker: Worker, pool: ArqPool, orchestrator: Orchestrator
) -> None:
    job = await pool.enqueue_job("broken")
    assert job is not None

    with pytest.raises(JobFailed, match="ValueError: no such thing"):
        await job.result(timeout=15)
    info = await job.info()
    assert isinstance(info, JobResult) and not info.success


async def test_result_with_a_timeout_raises_a_timeout_error(worker: Worker, pool: ArqPool) -> None:
    job = await pool.enqueue_job("add", 1, 2, _defer_by=60)
    assert job is not None

    with pytest.raises(TimeoutError):
        await job.result(timeout=0.3)
    assert issubclass(ResultTimeout, TimeoutError)
    assert await job.status() == JobStatus.deferred


async def test_abort_stops_a_running_job(worker: Worker, pool: ArqPool) -> None:
    job = await pool.enqueue_job("slow")
    assert job is not None
    for _ in range(500):
        if await job.status() == JobStatus.in_progress:
            break
        await asyncio.sleep(0.01)

    assert await job.abort(timeout=10) is True
    assert await job.status() == JobStatus.complete


async def test_abort_of_a_finished_job_answers_false(worker: Worker, pool: ArqPool) -> None:
    job = await pool.enqueue_job("add", 1, 2)
    assert job is not None
    await job.result(timeout=10)

    assert await job.abort() is False


async def test_an_unknown_job_is_not_found(pool: ArqPool) -> None:
    job = Job("no-such-job", pool)

    assert await job.status() == JobStatus.not_found
    assert await job.info() is None


async def test_a_call_input_with_a_bad_argument_fails_without_retries(
    worker: Worker, pool: ArqPool
) -> None:
    job = await pool.enqueue_job("download", "u", nonsense=1)
    assert job is not None

    with pytest.raises(JobFailed, match=r"InputError: .*nonsense"):
        await job.result(timeout=10)
    done = await pool.client.get(job.job_id)
    assert (done.status, done.attempt) == ("failed", 1)
