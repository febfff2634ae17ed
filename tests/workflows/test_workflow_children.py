"""ctx.call and ctx.gather: child jobs on any machine, fan-out and fan-in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wf_helpers import Machine

from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.queue.states import JobStatus
from tether.workers.context import ChildFailed, WorkflowContext
from tether.workers.workflow import workflow


def double(x: int) -> int:
    return x * 2


def explode(x: Any) -> None:
    raise RuntimeError(f"cannot handle {x}")


@workflow(name="parent")
async def parent(ctx: WorkflowContext, n: int) -> Any:
    one = await ctx.call("double", n)
    many = await ctx.gather(*(ctx.call("double", i) for i in range(3)))
    return [one, many]


async def test_children_run_as_jobs_and_their_results_come_back_in_order(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("parent", 5, version=1)
    run = await machine_factory([parent], {"double": double}).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == [10, [0, 2, 4]]
    child = await engine.get_job(f"{started.id}:c0")
    assert child.parent == started.id and child.status == JobStatus.COMPLETED


async def test_a_run_waits_on_its_children_without_holding_a_machine(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("parent", 5, version=1)
    await machine_factory([parent], known=["double"]).drain(started.id)  # runs no "double"

    run = await runs.get(started.id)
    assert run.status == RunStatus.WAITING
    assert run.waiting_on == {"kind": "children", "positions": [0]}
    assert run.activation_job is None


async def test_the_last_child_to_finish_wakes_the_run_in_the_same_step(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("parent", 5, version=1)
    await machine_factory([parent], known=["double"]).drain(started.id)
    child = (await engine.claim("m9", ["double"], 1))[0]

    await engine.complete(child.id, child.token, 10, machine=child.machine)

    run = await runs.get(started.id)
    assert run.status == RunStatus.QUEUED and run.activations == 2


@workflow(name="careful")
async def careful(ctx: WorkflowContext) -> Any:
    try:
        await ctx.call("explode", "x")
    except ChildFailed as exc:
        return {"status": exc.status, "type": exc.error.get("type")}
    return "unreachable"


async def test_a_failed_child_raises_child_failed_in_the_parent(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("careful", None, version=1)
    run = await machine_factory([careful], {"explode": explode}).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == {"status": "failed", "type": "RuntimeError"}


@workflow(name="tolerant")
async def tolerant(ctx: WorkflowContext) -> Any:
    results = await ctx.gather(
        ctx.call("double", 1), ctx.call("explode", 2), return_exceptions=True
    )
    return [r if not isinstance(r, ChildFailed) else "failed" for r in results]


async def test_gather_with_return_exceptions_returns_failures_in_place(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("tolerant", None, version=1)
    run = await machine_factory([tolerant], {"double": double, "explode": explode}).drain(
        started.id
    )

    assert run.result == [2, "failed"]


@workflow(name="unhandled")
async def unhandled(ctx: WorkflowContext) -> Any:
    return await ctx.call("explode", 1)


async def test_an_unhandled_child_failure_fails_the_run(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("unhandled", None, version=1)
    run = await machine_factory([unhandled], {"explode": explode}).drain(started.id)

    assert run.status == RunStatus.FAILED
    assert run.error is not None and run.error.type == "ChildFailed"


async def test_runs_and_their_children_share_a_partition_when_there_are_many(
    redis: Any, keys: Any
) -> None:
    from wf_helpers import Machine

    from tether.queue.config import QueueConfig
    from tether.queue.keys import Keys

    config = QueueConfig(keys=Keys(prefix=keys.prefix, partitions=4))
    engine, runs = QueueEngine(redis, config), RunEngine(redis, config)
    ids = [f"order:{i}" for i in range(8)] + [f"run{i}" for i in range(8)]
    for run_id in ids:
        await runs.start("parent", 1, run_id=run_id, version=1)
    machine = Machine(engine, runs, [parent], {"double": double})

    finished = [await machine.drain(run_id) for run_id in ids]

    assert {config.keys.partition_of(i) for i in ids} == {0, 1, 2, 3}
    assert [r.status for r in finished] == [RunStatus.COMPLETED] * len(ids)
    assert all(r.result == [2, [0, 2, 4]] for r in finished)


@workflow(name="hasty")
async def hasty(ctx: WorkflowContext, n: int) -> Any:
    return await ctx.call("double", n, timeout=0.0004)


async def test_a_child_timeout_below_a_millisecond_fails_the_run_instead_of_meaning_none(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("hasty", 5, version=1)
    run = await machine_factory([hasty], {"double": double}).drain(started.id)

    assert run.status == RunStatus.FAILED
    assert run.error is not None and "timeout must be from 0.001" in run.error.message
