"""The function gets its job's trace context to pass on: ``ctx["traceparent"]`` (arq-style
ctx of plain jobs) and ``WorkflowContext.traceparent``, with no span exporter configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from api_server import ApiServer

from tether import AsyncClient
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"


async def traceparent_of(ctx: dict[str, Any]) -> Any:
    return ctx["traceparent"]


async def test_a_jobs_ctx_carries_the_traceparent_it_was_submitted_with(
    api: ApiServer, client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(traceparent_of):
        async with httpx.AsyncClient(base_url=api.url, headers=api.headers()) as http:
            job = (
                await http.post(
                    "/v1/jobs", json={"function": "traceparent_of"}, headers={"traceparent": VALID}
                )
            ).json()
        done = await client.wait(job["id"], wait=10)
    assert done.result == VALID


async def test_a_job_submitted_without_one_sees_a_made_up_traceparent_of_its_trace(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(traceparent_of):
        job = await client.enqueue("traceparent_of")
        done = await client.wait(job.id, wait=10)
    version, trace_id, span_id, flags = str(done.result).split("-")
    assert (version, trace_id, len(span_id), flags) == ("00", job.id, 16, "01")


@workflow(name="traceparent_flow")
async def traceparent_flow(ctx: WorkflowContext) -> Any:
    return ctx.traceparent


async def test_a_workflows_ctx_carries_the_traceparent_its_run_was_started_with(
    api: ApiServer, client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(workflows=[traceparent_flow]):
        async with httpx.AsyncClient(base_url=api.url, headers=api.headers()) as http:
            started = await http.post(
                "/v1/runs",
                json={"workflow": "traceparent_flow", "id": "tp-1"},
                headers={"traceparent": VALID},
            )
            assert started.status_code == 201, started.text
        run = await client.wait_run("tp-1", wait=10)
    assert (run.status, run.result) == ("completed", VALID)
