"""Everyday mistakes fail fast and say why, instead of leaving a run waiting forever."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wf_helpers import Machine

from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import ChildFailed, WorkflowContext
from tether.workers.workflow import workflow


@workflow(name="typo", max_attempts=3)
async def typo(ctx: WorkflowContext) -> Any:
    return await ctx.call("no_such_fn", 1)


async def test_a_child_of_a_function_no_machine_registered_fails_the_run_at_once_naming_it(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("typo", None, version=1)
    run = await machine_factory([typo]).drain(started.id)

    assert run.status == RunStatus.FAILED  # at once: max_attempts=3 does not retry it
    assert run.failures == 1
    assert run.error is not None and run.error.type == "ChildFailed"
    assert "no_such_fn" in run.error.message and "no machine has registered" in run.error.message
    assert (await engine.list_jobs(function="no_such_fn"))[0] == []


@workflow(name="typo_handled")
async def typo_handled(ctx: WorkflowContext) -> Any:
    try:
        await ctx.call("no_such_fn", 1)
    except ChildFailed as exc:
        return [exc.status, exc.error["type"], exc.retryable]
    return "unreachable"


async def test_a_refused_child_is_a_catchable_child_failure(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("typo_handled", None, version=1)
    run = await machine_factory([typo_handled]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == ["refused", "UnknownFunction", False]
    events = [e["event"] for e in await runs.timeline(started.id)]
    assert "child_refused" in events and "child_started" not in events


@workflow(name="typo_then_fixed")
async def typo_then_fixed(ctx: WorkflowContext) -> Any:
    return await ctx.call("late_fn", 2)


async def test_a_manual_retry_starts_a_refused_child_once_its_function_is_registered(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("typo_then_fixed", None, version=1)
    failed = await machine_factory([typo_then_fixed]).drain(started.id)

    await runs.retry(started.id)
    run = await machine_factory([typo_then_fixed], {"late_fn": lambda x: x * 3}).drain(started.id)

    assert failed.status == RunStatus.FAILED
    assert run.status == RunStatus.COMPLETED and run.result == 6


@workflow(name="child_workflow")
async def child_workflow(ctx: WorkflowContext) -> Any:
    try:
        await ctx.call("wf:typo@1", {})
    except ChildFailed as exc:
        return exc.error["type"]
    return "unreachable"


async def test_calling_a_workflow_as_a_child_is_refused_not_abandoned(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("child_workflow", None, version=1)
    run = await machine_factory([child_workflow, typo]).drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == "UnsupportedChild"
