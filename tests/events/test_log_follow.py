"""Following a job's or a run's log lines as server-sent events, over a real HTTP
connection to the real API, with a real worker logging: one ``log`` event per line as
it arrives, one ``end`` event once the job or run has ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from api_server import ApiServer
from sse import SseReader

from tether import AsyncClient
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow

pytestmark = pytest.mark.usefixtures("orchestrator")

log = logging.getLogger("app.follow")
go_on = asyncio.Event()


async def two_halves(ctx: dict[str, Any]) -> None:
    log.info("first half")
    await go_on.wait()
    log.info("second half")


@workflow(name="followed")
async def followed(ctx: WorkflowContext, n: int) -> int:
    log.info("run begins")
    await ctx.step("step", lambda: log.warning("inside step") or n)
    return n


@asynccontextmanager
async def follow(
    api: ApiServer, path: str, headers: dict[str, str] | None = None, **params: str
) -> AsyncIterator[SseReader]:
    async with (
        httpx.AsyncClient(base_url=api.url, timeout=httpx.Timeout(10, read=30)) as http,
        http.stream(
            "GET", path, params=params, headers={**api.headers("viewer"), **(headers or {})}
        ) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream"), (
            response.request.headers,
            response.request.url,
        )
        reader = SseReader(response)
        await reader.comment("connected")
        yield reader


async def test_following_a_job_streams_each_line_as_it_comes_then_ends(
    client: AsyncClient, api: ApiServer
) -> None:
    go_on.clear()
    assert api.keys is not None
    async with Worker({"functions": [two_halves]}, url=api.url, api_key=api.keys.machine):
        job = await client.enqueue("two_halves")
        async with follow(
            api, f"/v1/jobs/{job.id}/logs", headers={"Accept": "text/event-stream"}
        ) as sse:
            first = await sse.until("log")
            go_on.set()  # the job goes on only once the first line was seen live
            second = await sse.until("log")
            end = await sse.until("end")

    assert (first["message"], second["message"]) == ("first half", "second half")
    assert end == {"status": "completed", "dropped": 0, "trimmed": 0}


async def test_following_resumes_after_the_last_event_id(
    client: AsyncClient, api: ApiServer
) -> None:
    go_on.set()
    assert api.keys is not None
    async with Worker({"functions": [two_halves]}, url=api.url, api_key=api.keys.machine):
        job = await client.enqueue("two_halves")
        await client.wait(job.id, wait=20)
        page = await client.logs(job.id)
        first_cursor = page.lines[0].cursor
        async with follow(
            api, f"/v1/jobs/{job.id}/logs", headers={"Last-Event-ID": first_cursor}, follow="sse"
        ) as sse:
            rest = await sse.until("log")
            end = await sse.until("end")

    assert rest["message"] == "second half" and end["status"] == "completed"


async def test_following_a_run_streams_its_activations_and_steps_lines(
    client: AsyncClient, api: ApiServer
) -> None:
    assert api.keys is not None
    settings = {"workflows": [followed], "shutdown_grace": 1.0}
    async with Worker(settings, url=api.url, api_key=api.keys.machine):
        run = await client.start("followed", 3)
        async with follow(api, f"/v1/runs/{run.id}/logs", follow="sse") as sse:
            begin = await sse.until("log")
            step = await sse.until("log")
            end = await sse.until("end")

    assert begin["message"] == "run begins" and begin["run"] == run.id
    assert (step["message"], step["step"], step["step_name"]) == ("inside step", 0, "step")
    assert end["status"] == "completed"
