"""Runs over HTTP: the real API, the real worker and the client, in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from api_server import ApiServer
from redis.asyncio import Redis

from tether import AsyncClient, func
from tether.api.registry import FunctionRegistry
from tether.errors import Conflict, ResultTimeout, RunFailed, UnknownFunction, ValidationFailed
from tether.orchestrator.loop import Orchestrator
from tether.protocol import FunctionSpec
from tether.queue.keys import Keys
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
    client: AsyncClient, worker: Worker, redis: Redis, keys: Keys
) -> None:
    # v7 was registered once (by a machine since gone): not served now, but not a typo.
    await FunctionRegistry(redis, keys).register([FunctionSpec(name="wf:flow@7", kind="workflow")])
    run = await client.start("flow", 1, version=7)

    assert run.status == "queued"
    assert run.waiting_on is not None and run.waiting_on["kind"] == "version"
    assert "flow v7" in run.waiting_on["message"]


async def test_starting_a_version_no_machine_ever_registered_is_404(
    client: AsyncClient, worker: Worker
) -> None:
    with pytest.raises(UnknownFunction) as caught:
        await client.start("flow", 1, version=99)

    assert "version 99" in caught.value.message
    assert await client.list_runs() == []


async def test_a_decision_or_signal_says_whether_it_woke_the_run_or_was_buffered(
    client: AsyncClient, worker: Worker
) -> None:
    run = await client.start("flow", 20)
    await wait_status(client, run.id, "waiting")

    early_signal = await client.signal(run.id, "note", "fragile")
    typo = await client.approve(run.id, "shipp")
    decided = await client.approve(run.id, "ship")

    assert early_signal.delivery == "buffered"
    assert early_signal.buffered == {"signals": ["note"]}
    assert typo.delivery == "buffered"
    assert decided.delivery == "woken"
    later = await client.get_run(run.id)
    assert later.delivery is None
    assert later.buffered is not None and later.buffered["approvals"] == ["shipp"]


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


child_tries: list[int] = []


async def declines(ctx: dict[str, Any], x: int) -> int:
    child_tries.append(x)
    raise RuntimeError("declined")


@workflow(name="calls_children", max_attempts=2)
async def calls_children(ctx: WorkflowContext, name: str) -> Any:
    return await ctx.call(name, 1)


async def test_over_http_a_child_takes_its_functions_registered_attempts(
    api: ApiServer, orchestrator: Orchestrator
) -> None:
    child_tries.clear()
    settings = {
        "functions": [func(declines, max_tries=1)],
        "workflows": [calls_children],
        "shutdown_grace": 1.0,
    }
    async with (
        Worker(settings, url=api.url, machine_id="wf-terms") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        run = await client.start("calls_children", "declines")
        done = await client.wait_run(run.id, wait=20)

    assert done.status == "failed"
    assert child_tries == [1, 1]  # one try per workflow attempt, not the queue's default


async def test_over_http_a_child_no_machine_registered_fails_the_run_at_once(
    api: ApiServer,
) -> None:
    settings = {"workflows": [calls_children], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-typo") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        run = await client.start("calls_children", "no_such_fn")
        done = await client.wait_run(run.id, wait=10)

    assert done.status == "failed" and done.error is not None
    assert "no_such_fn" in done.error.message


async def test_listing_runs_over_http_follows_the_cursor_and_shows_what_they_wait_on(
    client: AsyncClient, worker: Worker
) -> None:
    a = await client.start("flow", 1, tags={"env": "prod"})
    b = await client.start("flow", 2, tags={"env": "dev"})
    await wait_status(client, a.id, "waiting")
    await wait_status(client, b.id, "waiting")

    first = await client.list_runs_page(limit=1)
    everything = await client.list_runs(limit=10)
    prod = await client.list_runs(tags={"env": "prod"})

    assert len(first.runs) == 1 and first.next_cursor is not None
    assert {r.id for r in everything} == {a.id, b.id}
    assert [(r.id, r.tags) for r in prod] == [(a.id, {"env": "prod"})]
    assert all(r.waiting_on and r.waiting_on["kind"] == "approval" for r in everything)


@workflow(name="little")
async def little(ctx: WorkflowContext, n: int) -> int:
    return int(await ctx.step("inc", lambda: n + 1))


@workflow(name="big")
async def big(ctx: WorkflowContext, n: int) -> list[Any]:
    return list(await ctx.gather(ctx.child("little", n), ctx.call("add", {"a": n, "b": n})))


async def test_over_http_a_workflow_awaits_a_child_run_next_to_a_child_job(api: ApiServer) -> None:
    settings = {"functions": [add], "workflows": [big, little], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-kids") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        run = await client.start("big", 4)
        result = await client.result(run.id, wait=10)
        kid = await client.get_run(f"{run.id}:w0")

    assert result == [5, 8]
    assert kid.parent == run.id and kid.status == "completed" and kid.result == 5


async def test_over_http_runs_list_by_parent_gives_its_child_runs(api: ApiServer) -> None:
    settings = {"functions": [add], "workflows": [big, little], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-kids-list") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        run = await client.start("big", 1)
        other = await client.start("big", 2)
        await client.result(run.id, wait=10)
        await client.result(other.id, wait=10)
        children = await client.list_runs(parent=run.id)

    assert [(r.id, r.parent) for r in children] == [(f"{run.id}:w0", run.id)]


async def test_a_malformed_parent_in_the_runs_listing_is_a_422(client: AsyncClient) -> None:
    with pytest.raises(ValidationFailed):
        await client.list_runs(parent="no spaces")


@workflow(name="looper")
async def looper(ctx: WorkflowContext, n: int) -> int:
    if n >= 3:
        return n
    ctx.continue_as_new(int(await ctx.step("next", lambda: n + 1)))


async def test_over_http_a_run_continues_as_new_until_it_returns(api: ApiServer) -> None:
    settings = {"workflows": [looper], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-loop") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        run = await client.start("looper", 0)
        result = await client.result(run.id, wait=10)
        done = await client.get_run(run.id)

    assert result == 3 and done.continued == 3


def test_a_suspend_whose_wait_lacks_what_its_kind_needs_is_a_422(api: ApiServer) -> None:
    import httpx

    body = {"job": "r:a1", "token": "1", "wait": {"kind": "sleep", "position": 0, "name": "s"}}
    response = httpx.post(
        f"{api.url}/v1/machines/m1/runs/r/suspend", json=body, headers=api.headers("machine")
    )

    assert response.status_code == 422
    assert "duration" in response.json()["error"]["message"]


@workflow(name="breaks")
async def breaks(ctx: WorkflowContext, n: int) -> int:
    raise ValueError(f"broken {n}")


async def test_execute_starts_a_run_and_answers_with_its_result_in_one_request(
    api: ApiServer,
) -> None:
    settings = {"workflows": [little, breaks], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-execute") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        assert await client.execute("little", 4, wait=10) == 5
        with pytest.raises(RunFailed) as failed:
            await client.execute("breaks", 1, wait=10)

    assert failed.value.run is not None and failed.value.run.status == "failed"
    assert "broken 1" in str(failed.value)


async def test_execute_raises_result_timeout_for_a_run_still_waiting_after_its_wait(
    client: AsyncClient, worker: Worker
) -> None:
    with pytest.raises(ResultTimeout) as late:
        await client.execute("flow", 2, wait=0.3)  # flow waits for an approval

    assert late.value.details["status"] == "waiting"


async def test_runs_started_while_a_worker_polls_get_their_first_activation_handed_to_it(
    api: ApiServer,
) -> None:
    import httpx

    settings = {"workflows": [little], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="wf-handoff") as _,
        AsyncClient(api.url, timeout=10) as client,
    ):
        for i in range(5):
            assert await client.execute("little", i, wait=10) == i + 1
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{api.url}/metrics", headers=api.headers())).text

    handed = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("tether_jobs_handed_off")
    )
    assert handed >= 1  # the worker's poll is parked between runs: most are handed over
