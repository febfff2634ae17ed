"""A worker runs at most max_jobs jobs at once, and batches what it reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tether import AsyncClient
from tether.workers import Worker


async def test_concurrency_reaches_max_jobs_and_never_exceeds_it(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    running = 0
    peak = 0
    full = asyncio.Event()

    async def gated(ctx: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            full.set()
        try:
            await full.wait()  # hold every slot until all three are taken
        finally:
            running -= 1

    async with make_worker(gated, max_jobs=3):
        jobs = await client.enqueue_many([{"function": "gated"} for _ in range(12)])
        done = [await client.wait(j.id, wait=10) for j in jobs]
    assert {j.status for j in done} == {"completed"}
    assert peak == 3


async def test_results_that_finish_together_are_reported_in_few_requests(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    started = 0
    all_started = asyncio.Event()
    gate = asyncio.Event()

    async def noop(ctx: dict[str, Any]) -> int:
        nonlocal started
        started += 1
        if started == 200:
            all_started.set()
        await gate.wait()
        return 1

    async with make_worker(noop, max_jobs=200) as worker:
        jobs = await client.enqueue_many([{"function": "noop"} for _ in range(200)])
        await all_started.wait()
        gate.set()  # all 200 finish in the same moment
        done = await asyncio.gather(*(client.wait(j.id, wait=10) for j in jobs))
        stats = worker.stats()
    assert {j.status for j in done} == {"completed"}
    assert stats["accepted"] == 200
    assert stats["result_requests"] <= 3
