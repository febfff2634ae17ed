"""A worker runs jobs end to end through the real API: results, threads, validation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from tether import AsyncClient, func
from tether.workers import Worker


async def add(ctx: dict[str, Any], x: int, y: int) -> int:
    return x + y


class Order(BaseModel):
    sku: str
    quantity: int


async def price(ctx: dict[str, Any], order: Order) -> dict[str, Any]:
    assert isinstance(order, Order)
    return {"sku": order.sku, "total": order.quantity * 3}


def blocking(ctx: dict[str, Any], name: str) -> dict[str, Any]:
    return {"hello": name, "thread": threading.current_thread().name}


async def unserializable(ctx: dict[str, Any]) -> object:
    return object()


async def whoami(ctx: dict[str, Any]) -> dict[str, Any]:
    return {k: ctx[k] for k in ("job_id", "job_try", "max_tries", "function", "machine_id")}


async def test_a_job_runs_and_its_result_is_visible(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(add):
        job = await client.enqueue("add", {"x": 2, "y": 3})
        done = await client.wait(job.id, wait=10)
    assert (done.status, done.result, done.attempt) == ("completed", 5, 1)


async def test_a_list_input_is_passed_as_positional_arguments(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(add):
        assert await client.call("add", [40, 2], wait=10) == 42


async def test_a_sync_function_runs_in_a_worker_thread(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(blocking):
        result = await client.call("blocking", "ada", wait=10)
    assert result["hello"] == "ada"
    assert result["thread"].startswith("tether-job")


async def test_a_pydantic_typed_input_arrives_validated_as_the_model(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(price):
        result = await client.call("price", {"sku": "tea", "quantity": "4"}, wait=10)
    assert result == {"sku": "tea", "total": 12}


async def test_invalid_input_fails_the_job_at_once_with_a_readable_message(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(func(price, max_tries=5)):
        job = await client.enqueue("price", {"sku": "tea", "quantity": "many"})
        done = await client.wait(job.id, wait=10)
    assert (done.status, done.attempt) == ("failed", 1)
    assert done.error is not None
    assert done.error.type == "InputError"
    assert "order.quantity" in done.error.message
    assert "valid integer" in done.error.message


async def test_a_result_that_is_not_json_fails_the_job_without_retries(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(unserializable):
        job = await client.enqueue("unserializable")
        done = await client.wait(job.id, wait=10)
    assert done.status == "failed"
    assert done.error is not None and "not JSON-serializable" in done.error.message


async def test_ctx_carries_the_job_and_the_machine(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker(func(whoami, max_tries=3), machine_id="m-ctx")
    async with worker:
        job = await client.enqueue("whoami")
        done = await client.wait(job.id, wait=10)
    assert done.result == {
        "job_id": job.id,
        "job_try": 1,
        "max_tries": 3,
        "function": "whoami",
        "machine_id": "m-ctx",
    }


async def test_functions_register_their_input_schema_with_the_api(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(price, func(add, name="sum", timeout=7, max_tries=2)):
        functions = {f.name: f for f in await client.functions()}
    assert functions["price"].input_schema is not None
    assert functions["price"].input_schema["required"] == ["sku", "quantity"]
    assert set(functions["sum"].input_schema["properties"]) == {"x", "y"}  # type: ignore[index]
