"""The real arq's objects (``arq.func``, ``arq.cron``, ``arq.Retry``, RedisSettings) in an
app written for arq, run by tether unchanged. Needs arq, which pins redis-py below 6:
``make test-arq`` runs these in .venv-arq; elsewhere they are skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

arq = pytest.importorskip("arq")

from api_server import ApiServer  # noqa: E402
from arq.connections import RedisSettings  # noqa: E402

from tether.arq import ArqPool, JobStatus, create_pool  # noqa: E402
from tether.orchestrator.loop import Orchestrator  # noqa: E402
from tether.workers import Worker  # noqa: E402

pytestmark = pytest.mark.arq


@pytest.fixture
async def worker(api: ApiServer) -> AsyncIterator[Worker]:
    import shop_tasks

    shop_tasks.seen.clear()
    async with Worker(shop_tasks.WorkerSettings, url=api.url) as w:
        await w.started.wait()
        yield w


@pytest.fixture
async def pool(api: ApiServer) -> AsyncIterator[ArqPool]:
    redis = await create_pool(RedisSettings(), url=api.url)  # as an arq app names it
    yield redis
    await redis.close()


async def test_an_arq_job_gets_its_arguments_as_arq_passes_them(
    worker: Worker, pool: ArqPool
) -> None:
    job = await pool.enqueue_job("place_order", "tea", 3, note="gift")
    assert job is not None

    assert await job.result(timeout=10) == {"sku": "tea", "quantity": 3, "note": "gift", "try": 1}


async def test_arq_retry_with_defer_runs_it_again(
    worker: Worker, pool: ArqPool, orchestrator: Orchestrator
) -> None:
    job = await pool.enqueue_job("charge_card", 42)
    assert job is not None

    answer = await job.result(timeout=15)

    assert answer.startswith("charged 42 on try 2 (enqueued 20")


async def test_arq_func_options_become_the_functions_limits(worker: Worker) -> None:
    specs = {s.name: s for s in worker.registry.specs}

    assert (specs["charge_card"].timeout, specs["charge_card"].max_attempts) == (30, 3)
    assert (specs["place_order"].timeout, specs["place_order"].max_attempts) == (60, 4)


async def test_arq_cron_jobs_become_schedules_and_run_at_startup(
    worker: Worker, pool: ArqPool
) -> None:
    import shop_tasks

    schedule = await pool.client.get_schedule("cron:nightly_report")
    for _ in range(500):
        if "nightly_report" in shop_tasks.seen:
            break
        await asyncio.sleep(0.01)

    assert (schedule.cron, schedule.source) == ("30 2 * * * 0", "worker")
    assert "nightly_report" in shop_tasks.seen


async def test_hooks_and_job_ids_as_arq_gives_them(worker: Worker, pool: ArqPool) -> None:
    import shop_tasks

    job = await pool.enqueue_job("place_order", "cup", _job_id="order-7")
    again = await pool.enqueue_job("place_order", "cup", _job_id="order-7")
    assert job is not None and again is None
    await job.result(timeout=10)

    assert f"start:{job.job_id}" in shop_tasks.seen and f"end:{job.job_id}" in shop_tasks.seen
    assert await job.status() == JobStatus.complete


async def test_a_job_id_reused_with_other_arguments_answers_none_as_in_arq(
    worker: Worker, pool: ArqPool
) -> None:
    job = await pool.enqueue_job("place_order", "cup", _job_id="order-9")
    again = await pool.enqueue_job("place_order", "mug", 2, _job_id="order-9")

    assert job is not None and again is None


async def test_arq_expires_ends_a_job_not_started_in_time(
    worker: Worker, pool: ArqPool, orchestrator: Orchestrator
) -> None:
    from datetime import timedelta

    from tether import JobFailed

    job = await pool.enqueue_job(
        "place_order", "tea", _defer_by=60, _expires=timedelta(seconds=0.3)
    )
    assert job is not None

    with pytest.raises(JobFailed, match="Expired"):
        await job.result(timeout=10)
    assert await job.status() == JobStatus.complete
