"""The client: call, get, cancel, and the API's errors back as typed exceptions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_server import ApiServer
from worker_helpers import settings

import tether
from tether import AsyncClient, func
from tether.errors import (
    ApiUnavailable,
    IdempotencyKeyReused,
    JobFailed,
    NotFound,
    ResultTimeout,
    UnknownFunction,
    ValidationFailed,
)
from tether.redis_server import free_port
from tether.workers import Worker


async def double(ctx: dict[str, Any], n: int) -> int:
    if n < 0:
        raise tether.NonRetryable(f"{n} is negative")
    return 2 * n


async def test_call_enqueues_and_returns_the_result(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        assert await client.call("double", 21, wait=10) == 42


async def test_call_raises_job_failed_carrying_the_jobs_error(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        with pytest.raises(JobFailed) as failed:
            await client.call("double", -1, wait=10)
    assert failed.value.job.status == "failed"
    assert failed.value.error.message == "-1 is negative"
    assert "-1 is negative" in str(failed.value)


async def linger(ctx: dict[str, Any], seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def test_call_raises_result_timeout_when_the_job_outlasts_its_timeout(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(linger):
        with pytest.raises(ResultTimeout) as timed_out:
            await client.call("linger", 2, wait=0.2)
        assert timed_out.value.details["status"] in {"queued", "running"}


async def test_waiting_past_the_timeout_raises_result_timeout(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        job = await client.enqueue("double", 1, delay=60)
        with pytest.raises(ResultTimeout):
            await client.wait(job.id, wait=0.1)


async def test_an_idempotency_key_returns_the_same_job(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        first = await client.enqueue("double", 1, idempotency_key="order-7")
        again = await client.enqueue("double", 1, idempotency_key="order-7")
    assert again.id == first.id


async def test_an_idempotency_key_reused_with_another_input_raises_naming_the_job(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        first = await client.enqueue("double", 1, idempotency_key="order-8", delay=60)
        with pytest.raises(IdempotencyKeyReused) as reused:
            await client.enqueue("double", 2, idempotency_key="order-8")
    assert reused.value.details["id"] == first.id


async def test_expires_takes_seconds_a_timedelta_or_an_aware_datetime(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        jobs = [
            await client.enqueue("double", 1, delay=60, expires=30),
            await client.enqueue("double", 1, delay=60, expires=timedelta(seconds=30)),
            await client.enqueue(
                "double", 1, delay=60, expires=datetime.now(UTC) + timedelta(seconds=30)
            ),
        ]
    for job in jobs:
        assert job.expires_at is not None and job.enqueued_at is not None
        assert abs((job.expires_at - job.enqueued_at).total_seconds() - 30) < 2


async def test_expires_refuses_a_naive_datetime_before_sending(client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        await client.enqueue("double", 1, expires=datetime.now())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
async def test_expires_refuses_nan_and_infinity_rather_than_send_them_as_never(
    client: AsyncClient, value: float
) -> None:
    with pytest.raises(ValueError, match="finite"):
        await client.enqueue("double", 1, expires=value)


async def test_enqueue_many_takes_a_timedelta_as_expires(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        [job] = await client.enqueue_many(
            [{"function": "double", "input": 1, "delay": 60, "expires": timedelta(seconds=30)}]
        )
    assert job.expires_at is not None


async def test_call_of_a_job_whose_expiry_has_passed_raises_job_failed_expired(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        with pytest.raises(JobFailed) as failed:
            await client.call(
                "double", 1, wait=10, expires=datetime.now(UTC) - timedelta(seconds=1)
            )
    assert failed.value.job.status == "expired"
    assert failed.value.error.type == "Expired"


async def test_cancelling_a_waiting_job_cancels_it_at_once(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        job = await client.enqueue("double", 1, delay=60)
        cancelled = await client.cancel(job.id)
    assert cancelled.status == "cancelled"


async def test_an_unknown_job_raises_not_found(client: AsyncClient) -> None:
    with pytest.raises(NotFound):
        await client.get("no-such-job")


async def test_an_unregistered_function_raises_unknown_function(client: AsyncClient) -> None:
    with pytest.raises(UnknownFunction) as err:
        await client.enqueue("nobody-serves-this")
    assert err.value.details == {"function": "nobody-serves-this"}


async def test_a_bad_field_raises_validation_failed(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        with pytest.raises(ValidationFailed):
            await client.enqueue("double", 1, delay=-5)


async def test_an_unreachable_api_raises_api_unavailable() -> None:
    async with AsyncClient(f"http://127.0.0.1:{free_port()}") as nowhere:
        with pytest.raises(ApiUnavailable) as err:
            await nowhere.get("x")
    assert err.value.__cause__ is not None  # translated at the boundary, cause kept


async def test_list_jobs_shows_recent_jobs(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        job = await client.enqueue("double", 1, delay=60)
        listed = await client.list_jobs(function="double")
    assert [j.id for j in listed] == [job.id]


async def test_the_client_and_workers_carry_on_after_the_api_restarts(
    api: ApiServer, client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(double):
        assert await client.call("double", 1, wait=10) == 2
        await asyncio.to_thread(api.stop)  # pooled connections die with it
        await asyncio.to_thread(api.start)
        assert await client.call("double", 2, wait=10) == 4


# -- the blocking client, from plain sync code ----------------------------------------------


class WorkerThread:
    """A worker on its own event loop in a thread, for tests written as sync code."""

    def __init__(self, worker: Worker) -> None:
        import asyncio

        self.worker = worker
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            runner = self.loop.create_task(self.worker.run())
            await self.worker.started.wait()
            self.ready.set()
            await runner

        self.loop.run_until_complete(main())

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        assert self.ready.wait(10), "the worker did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(10)


@pytest.fixture
def sync_worker(api: ApiServer) -> Iterator[None]:
    with WorkerThread(Worker(settings(func(double, max_tries=1)), url=api.url)):
        yield


@pytest.mark.usefixtures("sync_worker")
def test_the_sync_client_works_from_plain_sync_code(api: ApiServer) -> None:
    with tether.Client(api.url) as client:
        assert client.call("double", 4, wait=10) == 8
        job = client.enqueue("double", 5)
        assert client.wait(job.id, wait=10).result == 10
        with pytest.raises(JobFailed):
            client.call("double", -3, wait=10)
        with pytest.raises(NotFound):
            client.get("missing")
