"""Runs over HTTP: the real API, the real worker and the client, in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether.errors import Conflict, UnknownFunction, ValidationFailed
from tether.orchestrator.loop import Orchestrator
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


@workflow(name="flow")
async def flow(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    doubled = await ctx.step("double", lambda: n * 2)
    total = await ctx.call("add", {"a": doubled, "b": 1})
    ctx.log("added", total=total)
    decision = await ctx.wait_for_approval("ship", prompt="ship?")
    note = await ctx.wait_for_signal("note")
    await ctx.sleep(0.05)
    return {"total": total, "approved": decision.approved, "by": decision.by, "note": note}


@pytest.fixture
async def worker(api: ApiServer) -> AsyncIterator[Worker]:
    settings = {"functions": [add], "workflows": [flow], "shutdown_grace": 1.0}
    async with Worker(settings, url=api.url, machine_id="wf-m1") as w:
        yield w


async def wait_status(
    client: AsyncClient, run_id: str, status: str, kind: str = "approval"
) -> None:
    """Until the run has ``status`` (and, when waiting, waits on ``kind``)."""
    for _ in range(3000):
        run = await client.get_run(run_id)
        if run.status == status and (
            status != "waiting" or (run.waiting_on or {}).get("kind") == kind
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} never became {status}")


async def test_a_run_goes_through_every_primitive_over_http(
    client: AsyncClient, worker: Worker, orchestrator: Orchestrator
) -> None:
    run = await client.start("flow", 20, id="order-7")
    assert run.version == 1 and run.status == "queued"

    await wait_status(client, run.id, "waiting")
    waiting = await client.get_run(run.id)
    await client.approve(run.id, "ship")
    await client.signal(run.id, "note", "fragile")
    result = await client.result(run.id, wait=10)

    assert waiting.waiting_on == {
        "kind": "approval",
        "position": 2,
        "key": "ship",
        "prompt": "ship?",
    }
    # The decider is the client's key, never a name it could choose.
    assert result == {"total": 41, "approved": True, "by": "test-admin", "note": "fragile"}
    events = [e.event for e in await client.timeline(run.id)]
    assert events[0] == "created" and events[-1] == "completed"
    assert {"step", "child_started", "child_finished", "approval_decided", "log", "claimed"} <= set(
        events
    )


async def test_the_same_run_id_over_http_names_the_same_run(
    client: AsyncClient, worker: Worker
) -> None:
    first = await client.start("flow", 1, id="same")
    again = await client.start("flow", 2, id="same")

    assert again.id == first.id and again.input == 1


async def test_a_second_approval_decision_over_http_is_409(
    client: AsyncClient, worker: Worker
) -> None:
    run = await client.start("flow", 1)
    await client.approve(run.id, "ship")

    with pytest.raises(Conflict):
        await client.deny(run.id, "ship")


async def test_starting_a_workflow_no_machine_ever_served_is_404(client: AsyncClient) -> None:
    with pytest.raises(UnknownFunction):
        await client.start("nobody-serves-this", 1)


async def test_a_run_pinned_to_a_version_nobody_serves_waits_and_says_so(
    client: AsyncClient, worker: Worker
) -> None:
    run = await client.start("flow", 1, version=7)

    assert run.status == "queued"
    assert run.waiting_on is not None and run.waiting_on["kind"] == "version"
    assert "flow v7" in run.waiting_on["message"]


async def test_cancel_over_http_ends_the_run(client: AsyncClient, worker: Worker) -> None:
    run = await client.start("flow", 1)
    await wait_status(client, run.id, "waiting")

    cancelled = await client.cancel_run(run.id)

    assert cancelled.status == "cancelled"
    assert [r.id for r in await client.list_runs(status="cancelled")] == [run.id]


async def test_a_bad_run_body_is_a_422_naming_the_field(client: AsyncClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await client.start("flow", 1, version=0)
    assert "version" in str(caught.value.details) or "version" in caught.value.message


async def test_get_with_wait_answers_when_the_run_finishes(
    client: AsyncClient, worker: Worker, orchestrator: Orchestrator
) -> None:
    run = await client.start("flow", 1)
    await wait_status(client, run.id, "waiting")
    await client.approve(run.id, "ship")
    await client.signal(run.id, "note", None)

    done = await client.get_run(run.id, wait=10)

    assert done.status == "completed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job": "r:a1", "token": "1", "position": -1, "record": {"name": "s"}}, "position"),
        ({"job": "r:a1", "token": "1", "position": True, "record": {"name": "s"}}, "position"),
        ({"job": "bad id", "token": "1", "position": 0, "record": {"name": "s"}}, "job"),
        ({"job": "r:a1", "token": "1", "position": 0, "record": []}, "record"),
        ({"job": "r:a1", "token": "1", "position": 0, "record": {}, "extra": 1}, "extra"),
    ],
)
def test_a_malformed_step_report_is_a_422_naming_the_field(
    api: ApiServer, body: dict[str, Any], field: str
) -> None:
    import httpx

    response = httpx.post(
        f"{api.url}/v1/machines/m1/runs/r/steps", json=body, headers=api.headers("machine")
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == field


def test_a_step_report_that_is_not_json_is_a_400(api: ApiServer) -> None:
    import httpx

    response = httpx.post(
        f"{api.url}/v1/machines/m1/runs/r/steps",
        content=b"{nope",
        headers={"content-type": "application/json", **api.headers("machine")},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_stale_step_report_over_http_is_a_409_lease_not_held(
    api: ApiServer, worker: Worker
) -> None:
    import httpx

    httpx.post(
        f"{api.url}/v1/runs",
        json={"workflow": "flow", "input": 1, "id": "stale-1"},
        headers=api.headers("app"),
    )
    response = httpx.post(
        f"{api.url}/v1/machines/m1/runs/stale-1/steps",
        json={"job": "stale-1:a1", "token": "999999999", "position": 0, "record": {"name": "x"}},
        headers=api.headers("machine"),
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "lease_not_held"


broken_once: dict[str, bool] = {}


async def charge(order: str) -> str:
    if broken_once.pop(order, False):
        raise RuntimeError("card declined")
    return f"charged {order}"


@workflow(name="retryable")
async def retryable(ctx: WorkflowContext, order: str) -> str:
    return str(await ctx.step("charge", charge, order))


async def test_a_failed_run_retried_over_http_completes(api: ApiServer) -> None:
    broken_once["o-1"] = True
    settings = {"workflows": [retryable], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-retry") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        run = await client.start("retryable", "o-1", id="retry-1")
        failed = await client.wait_run(run.id, wait=10)
        retried = await client.retry_run(run.id)
        result = await client.result(run.id, wait=10)

    assert failed.status == "failed" and failed.error is not None
    assert "card declined" in failed.error.message
    assert retried.status in ("queued", "running", "completed")
    assert result == "charged o-1"
