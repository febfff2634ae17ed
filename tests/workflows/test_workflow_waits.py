"""ctx.sleep, wait_for_approval and wait_for_signal: the run holds no machine while it
waits, and wakes atomically when the timer, decision or signal arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from wf_helpers import Machine

from tether.errors import Conflict, InvalidTransition
from tether.queue.config import QueueConfig
from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import Approval, WaitTimeout, WorkflowContext
from tether.workers.workflow import workflow


async def make_due(redis: Redis, config: QueueConfig, run_id: str) -> None:
    """Move a run's timer into the past (instead of sleeping in the test)."""
    pk = config.keys.for_id(run_id)
    await redis.zadd(pk.timers, {run_id: 0})
    await redis.hset(pk.run(run_id), "wake_at", 0)  # type: ignore[misc]


@workflow(name="napper")
async def napper(ctx: WorkflowContext) -> str:
    await ctx.sleep(3600)
    return "rested"


async def test_a_sleeping_run_waits_holding_no_job_and_records_its_wake_time(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("napper", None, version=1)
    run = await machine_factory([napper]).drain(started.id)

    assert run.status == RunStatus.WAITING
    assert run.waiting_on == {"kind": "sleep", "position": 0, "name": "sleep"}
    assert run.wake_at is not None and run.activation_job is None
    assert (await runs.steps(started.id))[0]["status"] == "pending"


async def test_a_due_timer_wakes_the_run_once_even_when_woken_twice(
    redis: Redis, config: QueueConfig, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("napper", None, version=1)
    machine = machine_factory([napper])
    await machine.drain(started.id)
    await make_due(redis, config, started.id)

    woken = [await runs.wake_timers(), await runs.wake_timers()]
    run = await machine.drain(started.id)

    assert woken == [1, 0]
    assert run.status == RunStatus.COMPLETED and run.result == "rested"
    assert run.activations == 2


async def test_a_timer_that_is_not_due_wakes_nothing(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("napper", None, version=1)
    await machine_factory([napper]).drain(started.id)

    assert await runs.wake_timers() == 0
    assert (await runs.get(started.id)).status == RunStatus.WAITING


@workflow(name="gate")
async def gate(ctx: WorkflowContext) -> dict[str, Any]:
    decision: Approval = await ctx.wait_for_approval("ship", prompt="Ship it?", data={"n": 1})
    return {"approved": decision.approved, "by": decision.by, "comment": decision.comment}


async def test_an_approval_wakes_the_waiting_run_with_the_decision(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("gate", None, version=1)
    machine = machine_factory([gate])
    waiting = await machine.drain(started.id)

    decision = await runs.decide(started.id, "ship", approved=True, by="ana", comment="go")
    run = await machine.drain(started.id)

    assert waiting.waiting_on == {
        "kind": "approval",
        "position": 0,
        "key": "ship",
        "prompt": "Ship it?",
        "data": {"n": 1},
    }
    assert decision["delivered"] is True and isinstance(decision["at"], int)
    assert run.status == RunStatus.COMPLETED
    assert run.result == {"approved": True, "by": "ana", "comment": "go"}


async def test_a_second_decision_on_the_same_key_is_a_conflict(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("gate", None, version=1)
    await machine_factory([gate]).drain(started.id)
    await runs.decide(started.id, "ship", approved=False, by="bo")

    with pytest.raises(Conflict) as caught:
        await runs.decide(started.id, "ship", approved=True, by="ana")
    assert caught.value.details["decision"]["by"] == "bo"


async def test_a_decision_made_before_the_run_waits_is_kept_for_it(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("gate", None, version=1)
    stored = await runs.decide(started.id, "ship", approved=False, by="bo")
    run = await machine_factory([gate]).drain(started.id)

    assert stored["delivered"] is False
    assert run.status == RunStatus.COMPLETED and run.result["approved"] is False


async def test_a_decision_on_a_finished_run_is_refused(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("gate", None, version=1)
    await runs.cancel(started.id)

    with pytest.raises(InvalidTransition):
        await runs.decide(started.id, "ship", approved=True)


@workflow(name="timed_gate")
async def timed_gate(ctx: WorkflowContext) -> str:
    try:
        await ctx.wait_for_approval("ship", timeout=60)
    except WaitTimeout:
        return "timed out"
    return "decided"


async def test_an_approval_timeout_raises_wait_timeout_in_the_workflow(
    redis: Redis, config: QueueConfig, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("timed_gate", None, version=1)
    machine = machine_factory([timed_gate])
    await machine.drain(started.id)
    await make_due(redis, config, started.id)

    await runs.wake_timers()
    run = await machine.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == "timed out"


async def test_a_decision_after_a_timeout_fired_does_not_wake_the_run_again(
    redis: Redis, config: QueueConfig, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("timed_gate", None, version=1)
    machine = machine_factory([timed_gate])
    await machine.drain(started.id)
    await make_due(redis, config, started.id)
    await runs.wake_timers()

    decision = await runs.decide(started.id, "ship", approved=True)
    run = await machine.drain(started.id)

    assert decision["delivered"] is False
    assert run.result == "timed out" and run.activations == 2


@workflow(name="listener")
async def listener(ctx: WorkflowContext) -> list[Any]:
    first = await ctx.wait_for_signal("item")
    second = await ctx.wait_for_signal("item")
    return [first, second]


async def test_signals_wake_the_run_with_their_payloads(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("listener", None, version=1)
    machine = machine_factory([listener])
    await machine.drain(started.id)

    assert await runs.signal(started.id, "item", {"sku": 1}) == "woken"
    await machine.drain(started.id)
    assert await runs.signal(started.id, "item", {"sku": 2}) == "woken"
    run = await machine.drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == [{"sku": 1}, {"sku": 2}]


async def test_signals_sent_before_the_run_waits_are_buffered_in_order(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("listener", None, version=1)
    assert await runs.signal(started.id, "other", 0) == "buffered"
    assert await runs.signal(started.id, "item", "a") == "buffered"
    assert await runs.signal(started.id, "item", "b") == "buffered"

    run = await machine_factory([listener]).drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == ["a", "b"]


async def test_a_signal_to_an_unknown_run_is_not_found(runs: RunEngine) -> None:
    from tether.errors import NotFound

    with pytest.raises(NotFound):
        await runs.signal("nope", "item", 1)


@workflow(name="chatty")
async def chatty(ctx: WorkflowContext) -> None:
    ctx.log("before the nap", n=1)
    await ctx.sleep(0)
    ctx.log("after the nap", n=2)


async def test_log_lines_reach_the_timeline_once_despite_replays(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("chatty", None, version=1)
    await machine_factory([chatty]).drain(started.id)

    lines = [e["line"] for e in await runs.timeline(started.id) if e["event"] == "log"]

    assert lines == ['{"message":"before the nap","n":1}', '{"message":"after the nap","n":2}']
