"""ctx.continue_as_new: an unbounded loop keeps a bounded history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wf_helpers import Machine

from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


@workflow(name="counter")
async def counter(ctx: WorkflowContext, state: dict[str, Any]) -> int:
    n = int(state["n"])
    if n >= 5:
        return n
    total = await ctx.step("inc", lambda: n + 1)
    await ctx.sleep(0)
    ctx.log("iteration", n=n)
    ctx.continue_as_new({"n": total})


async def test_continue_as_new_starts_the_run_over_with_a_new_input_and_history(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("counter", {"n": 0}, version=1)
    run = await machine_factory([counter]).drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == 5
    assert run.continued == 5 and run.input == {"n": 5}
    assert await runs.steps(started.id) == {}  # the last iteration recorded nothing
    events = [e["event"] for e in await runs.timeline(started.id)]
    assert events.count("continued_as_new") == 5
    assert events.count("log") == 5  # each iteration's line, written once


@workflow(name="approves_each_round")
async def approves_each_round(ctx: WorkflowContext, state: dict[str, Any]) -> Any:
    decision = await ctx.wait_for_approval(f"round-{state['round']}")
    if state["round"] == 2:
        return decision.approved
    ctx.continue_as_new({"round": state["round"] + 1})


async def test_decisions_made_for_a_later_iteration_are_kept_across_continue_as_new(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("approves_each_round", {"round": 1}, version=1)
    machine = machine_factory([approves_each_round])
    await runs.decide(started.id, "round-2", approved=True)  # early, for the next round
    await machine.drain(started.id)
    await runs.decide(started.id, "round-1", approved=True)

    run = await machine.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result is True and run.continued == 1
