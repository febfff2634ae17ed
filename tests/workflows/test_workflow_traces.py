"""A run's trace context reaches every activation, child job and child run (kept by the
Lua transitions, whatever the workers export), each child under the span of the call
that started it; resolved waits and calls keep when they began (``since``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from wf_helpers import Machine

from tether import tracing
from tether.protocol import TraceContext
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.tracing import call_span_id
from tether.workers.context import WorkflowContext
from tether.workers.workflow import report_resumed, workflow

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


@workflow(name="traced_approval")
async def traced_approval(ctx: WorkflowContext) -> bool:
    decision = await ctx.wait_for_approval("ship")
    return decision.approved


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Spans exported in this process, to memory, through tether's own provider."""
    sdk = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = tracing.new_provider()
    provider.add_span_processor(sdk.SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "TRACER", provider.get_tracer("test"))
    return exporter


async def test_the_activation_that_resumes_from_a_wait_reports_its_span_from_the_history(
    runs: RunEngine, machine_factory: Callable[..., Machine], spans: Any
) -> None:
    trace = TraceContext(TRACE, SPAN)
    started = await runs.start("traced_approval", version=1, trace=trace.to_field())
    machine = machine_factory([traced_approval])
    await machine.drain(started.id)
    await runs.decide(started.id, "ship", approved=True, by="tester")
    await machine.drain(started.id)
    record = (await runs.steps(started.id))[0]

    report_resumed(started.id, [(0, record)], trace)

    (span,) = spans.get_finished_spans()
    assert span.name == "tether.wait approval"
    assert format(span.context.trace_id, "032x") == TRACE
    assert format(span.parent.span_id, "016x") == SPAN
    assert (span.start_time, span.end_time) == (record["since"] * 10**6, record["at"] * 10**6)
    assert span.attributes["tether.step.name"] == "ship"


async def test_a_call_span_takes_the_id_its_child_carries_as_parent(
    engine: QueueEngine,
    runs: RunEngine,
    machine_factory: Callable[..., Machine],
    spans: Any,
) -> None:
    trace = TraceContext(TRACE, SPAN)
    started = await runs.start("traced_parent", 2, version=1, trace=trace.to_field())
    await machine_factory([traced_parent, traced_kid], {"double": double}).drain(started.id)
    record = (await runs.steps(started.id))[0]
    child = TraceContext.from_field((await engine.get_job(f"{started.id}:c0")).trace)

    report_resumed(started.id, [(0, record)], trace)

    (span,) = spans.get_finished_spans()
    assert span.name == "tether.call double"
    assert child is not None and format(span.context.span_id, "016x") == child.span_id
