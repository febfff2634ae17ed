"""Priorities and limits end to end: the client submits and sets them, real workers
over HTTP get their jobs in the order and within the limits the claim enforces."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tether import AsyncClient
from tether.protocol import FunctionLimits
from tether.workers import Worker


async def test_a_busy_worker_takes_the_highest_priority_next(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def step(ctx: dict[str, Any], name: str) -> None:
        if name == "first":
            await gate.wait()
        order.append(name)

    async with make_worker(step, max_jobs=1):
        first = await client.enqueue("step", "first")
        while (await client.get(first.id)).status != "running":
            await asyncio.sleep(0.02)
        jobs = [
            await client.enqueue("step", name, priority=priority)
            for name, priority in [("low", -1), ("plain", 0), ("high", 5), ("higher", 9)]
        ]
        gate.set()
        for job in jobs:
            await client.get(job.id, wait=10)

    assert order == ["first", "higher", "high", "plain", "low"]


async def test_a_function_limit_set_by_the_client_bounds_every_worker(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    running, most = 0, 0

    async def busy(ctx: dict[str, Any], n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return n

    async with make_worker(busy, max_jobs=5), make_worker(busy, max_jobs=5):
        out = await client.set_limits("busy", FunctionLimits(concurrency=2))
        jobs = [await client.enqueue("busy", n) for n in range(12)]
        done = [await client.get(job.id, wait=20) for job in jobs]

    assert out.concurrency == 2 and (await client.get_limits("busy")).concurrency == 2
    assert [j.status for j in done] == ["completed"] * 12
    assert most == 2


async def test_jobs_of_one_concurrency_key_run_one_at_a_time(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    running: dict[str, int] = {}
    most: dict[str, int] = {}

    async def per_customer(ctx: dict[str, Any], customer: str) -> None:
        running[customer] = running.get(customer, 0) + 1
        most[customer] = max(most.get(customer, 0), running[customer])
        await asyncio.sleep(0.05)
        running[customer] -= 1

    async with make_worker(per_customer, max_jobs=10):
        jobs = [
            await client.enqueue("per_customer", c, concurrency_key=c)
            for c in ["a", "b", "a", "b", "a", "a"]
        ]
        done = [await client.get(job.id, wait=20) for job in jobs]

    assert [j.status for j in done] == ["completed"] * 6
    assert most == {"a": 1, "b": 1}
