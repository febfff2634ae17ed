"""ctx.child: a workflow starts another workflow as a child run and awaits it durably."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wf_helpers import Machine

from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import ChildFailed, WorkflowContext
from tether.workers.workflow import workflow


@workflow(name="kid")
async def kid(ctx: WorkflowContext, n: int) -> int:
    doubled: int = await ctx.step("double", lambda: n * 2)
    if n < 0:
        raise ValueError(f"negative: {n}")
    return doubled


@workflow(name="waits_forever")
async def waits_forever(ctx: WorkflowContext) -> None:
    await ctx.wait_for_signal("never")


@workflow(name="mom")
async def mom(ctx: WorkflowContext, n: int) -> Any:
    one = await ctx.child("kid", n)
    both = await ctx.gather(ctx.child("kid", n + 1), ctx.call("triple", n))
    return [one, both]


async def test_a_child_run_returns_its_result_to_the_parent_and_mixes_with_jobs_in_gather(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("mom", 5, version=1)
    run = await machine_factory([mom, kid], {"triple": lambda x: x * 3}).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == [10, [12, 15]]
    child = await runs.get(f"{started.id}:w0")
    assert child.parent == started.id and child.workflow == "kid"
    assert child.status == RunStatus.COMPLETED and child.result == 10


async def test_the_timeline_and_the_listing_show_parent_and_children(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("mom", 1, version=1)
    await machine_factory([mom, kid], {"triple": lambda x: x * 3}).drain(started.id)

    events = await runs.timeline(started.id)
    listed, _ = await runs.list_runs(workflow="kid")

    started_runs = [
        e["child_run"] for e in events if e["event"] == "child_started" and "child_run" in e
    ]
    finished_runs = [
        e["child_run"] for e in events if e["event"] == "child_finished" and "child_run" in e
    ]
    assert started_runs == [f"{started.id}:w0", f"{started.id}:w1"]
    assert sorted(finished_runs) == started_runs
    assert {r.parent for r in listed} == {started.id}
    assert {r.id for r in listed} == {f"{started.id}:w0", f"{started.id}:w1"}


@workflow(name="careful_mom")
async def careful_mom(ctx: WorkflowContext) -> Any:
    try:
        await ctx.child("kid", -1)
    except ChildFailed as exc:
        return [exc.status, exc.error.get("type"), exc.job_id]
    return "unreachable"


async def test_a_failed_child_run_raises_child_failed_in_the_parent(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("careful_mom", None, version=1)
    run = await machine_factory([careful_mom, kid]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == ["failed", "ValueError", f"{started.id}:w0"]


@workflow(name="patient_mom")
async def patient_mom(ctx: WorkflowContext) -> None:
    await ctx.child("waits_forever")


async def test_cancelling_the_parent_cancels_its_child_runs(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("patient_mom", None, version=1)
    machine = machine_factory([patient_mom, waits_forever])
    await machine.drain(started.id)
    child_id = f"{started.id}:w0"
    waiting = await runs.get(child_id)

    await runs.cancel(started.id)

    assert waiting.status == RunStatus.WAITING
    assert (await runs.get(started.id)).status == RunStatus.CANCELLED
    assert (await runs.get(child_id)).status == RunStatus.CANCELLED


@workflow(name="orphan_mom")
async def orphan_mom(ctx: WorkflowContext) -> Any:
    try:
        await ctx.child("nobody_serves_this", 1)
    except ChildFailed as exc:
        return [exc.status, exc.error.get("type")]
    return "unreachable"


async def test_a_child_run_of_a_workflow_no_machine_registered_is_refused(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("orphan_mom", None, version=1)
    run = await machine_factory([orphan_mom]).drain(started.id)

    assert run.result == ["refused", "UnknownFunction"]


broken_once: dict[str, bool] = {}


@workflow(name="once_broken")
async def once_broken(ctx: WorkflowContext) -> str:
    broken = await ctx.step("check", lambda: broken_once.pop("kid", False))
    if broken:
        raise RuntimeError("broken once")
    return "fixed"


@workflow(name="retrying_mom")
async def retrying_mom(ctx: WorkflowContext) -> Any:
    return await ctx.child("once_broken")


async def test_retrying_the_parent_reruns_its_failed_child_run_as_a_new_run(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken_once["kid"] = True
    started = await runs.start("retrying_mom", None, version=1)
    machine = machine_factory([retrying_mom, once_broken])
    failed = await machine.drain(started.id)

    await runs.retry(started.id)
    run = await machine.drain(started.id)

    assert failed.status == RunStatus.FAILED
    assert run.status == RunStatus.COMPLETED and run.result == "fixed"
    kids, _ = await runs.list_runs(workflow="once_broken")
    assert sorted(r.status for r in kids) == [RunStatus.COMPLETED, RunStatus.FAILED]


async def test_listing_by_parent_gives_exactly_the_child_runs_of_that_run(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    machine = machine_factory([mom, kid], {"triple": lambda x: x * 3})
    first = await runs.start("mom", 1, version=1)
    other = await runs.start("mom", 2, version=1)
    await machine.drain(first.id)
    await machine.drain(other.id)

    children, _ = await runs.list_runs(parent=first.id)
    none, _ = await runs.list_runs(parent=f"{first.id}:w0")  # a child has no children

    assert sorted(r.id for r in children) == [f"{first.id}:w0", f"{first.id}:w1"]
    assert none == []
