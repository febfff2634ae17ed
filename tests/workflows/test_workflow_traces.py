"""A run's trace context reaches every activation, child job and child run (kept by the
Lua transitions, whatever the workers export), each child under the span of the call
that started it; resolved waits and calls keep when they began (``since``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wf_helpers import Machine

from tether.protocol import TraceContext
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.tracing import call_span_id
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def double(x: int) -> int:
    return x * 2


@workflow(name="traced_kid")
async def traced_kid(ctx: WorkflowContext, n: int) -> int:
    return int(await ctx.call("double", n))


@workflow(name="traced_parent")
async def traced_parent(ctx: WorkflowContext, n: int) -> Any:
    one = await ctx.call("double", n)
    two = await ctx.child("traced_kid", n)
    return [one, two]


async def test_child_jobs_and_child_runs_share_the_runs_trace_under_their_calls(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    trace = TraceContext(TRACE, SPAN, "01", "congo=t61rcWkgMzE")
    started = await runs.start("traced_parent", 4, version=1, trace=trace.to_field())
    machine = machine_factory([traced_parent, traced_kid], {"double": double})
    run = await machine.drain(started.id)
    assert run.status == RunStatus.COMPLETED and run.result == [8, 8]

    child_job = f"{started.id}:c0"
    child_run = f"{started.id}:w1"
    grandchild = f"{child_run}:c0"
    assert TraceContext.from_field((await engine.get_job(child_job)).trace) == trace.child(
        call_span_id(child_job)
    )
    assert TraceContext.from_field((await runs.get(child_run)).trace) == trace.child(
        call_span_id(child_run)
    )
    # The grandchild is under its own parent's call, in the same trace.
    assert TraceContext.from_field((await engine.get_job(grandchild)).trace) == trace.child(
        call_span_id(grandchild)
    )
    activation = await engine.get_job(f"{started.id}:a1")
    assert TraceContext.from_field(activation.trace) == trace


async def test_a_resolved_call_keeps_when_it_began(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("traced_parent", 1, version=1)
    await machine_factory([traced_parent, traced_kid], {"double": double}).drain(started.id)
    steps = await runs.steps(started.id)
    call = steps[0]
    assert call["kind"] == "call" and call["since"] <= call["at"]
