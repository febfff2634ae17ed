"""Captured log lines survive an API outage: the job never waits on them, and the
worker ships them once the API is back (tether/workers/logs.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether.api.settings import ApiSettings
from tether.workers import Worker

app_log = logging.getLogger("app.jobs")


@pytest.fixture
def api_settings(api_settings: ApiSettings) -> ApiSettings:
    # Leases outlive the outage, so the job stays this machine's throughout (no
    # orchestrator runs here either): the test is about its lines, not its lease.
    return dataclasses.replace(api_settings, lease_ttl_ms=30_000)


async def test_with_the_api_down_a_job_still_completes_and_its_lines_are_shipped_later(
    client: AsyncClient, make_worker: Callable[..., Worker], api: ApiServer
) -> None:
    outage = asyncio.Event()
    finished = asyncio.Event()

    async def through_an_outage(ctx: dict[str, Any]) -> str:
        app_log.info("before the outage")
        await outage.wait()
        for i in range(3):
            app_log.info("during the outage %d", i)
            await asyncio.sleep(0.3)  # long enough for the shipper to try on its own
        finished.set()
        return "done"

    async with make_worker(through_an_outage) as worker:
        job = await client.enqueue("through_an_outage")
        page = await client.logs(job.id, wait=10)  # the first line is in
        await asyncio.to_thread(api.stop)
        outage.set()
        async with asyncio.timeout(10):
            await finished.wait()  # logging never blocked on the missing API
        await asyncio.to_thread(api.start)
        done = await client.wait(job.id, wait=20)
        messages = [line.message for line in page.lines]
        async with asyncio.timeout(20):
            while len(messages) < 4:
                more = await client.logs(job.id, after=page.cursor, wait=5)
                messages += [line.message for line in more.lines]
                page = more
        assert worker.logs is not None
        assert worker.logs.dropped == worker.logs.rejected == 0

    assert done.status == "completed" and done.result == "done"
    assert messages == ["before the outage", *[f"during the outage {i}" for i in range(3)]]
