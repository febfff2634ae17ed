"""Sticky replay: a machine keeps a waiting run's code suspended in memory, and the run's
next activation there needs only the records written since (begin's delta); another
machine, a retry, a full cache or a stale entry all mean a replay in full."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from wf_helpers import Machine, leased

from tether.orchestrator.loop import Orchestrator
from tether.protocol import LeasedJob, SignalWait
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import WorkflowContext
from tether.workers.sticky import RunCache
from tether.workers.workflow import workflow

RAN: list[str] = []  # every step function call, as "<run>:<step>"


def ran(run_id: str, name: str, value: Any = None) -> Any:
    RAN.append(f"{run_id}:{name}")
    return value


@workflow(name="sticky_loop")
async def sticky_loop(ctx: WorkflowContext, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.step(f"s{i}", ran, ctx.run_id, f"s{i}", i)
        await ctx.sleep(0)
    return total


@workflow(name="two_signals", timeout=600)
async def two_signals(ctx: WorkflowContext, _: Any) -> list[Any]:
    a = await ctx.step("a", ran, ctx.run_id, "a", 1)
    one = await ctx.wait_for_signal("one")
    b = await ctx.step("b", ran, ctx.run_id, "b", 2)
    two = await ctx.wait_for_signal("two")
    return [a, one, b, two]


CLEANED: list[str] = []


@workflow(name="cleans_up")
async def cleans_up(ctx: WorkflowContext, _: Any) -> str:
    try:
        return str(await ctx.wait_for_signal("go"))
    finally:
        CLEANED.append(ctx.run_id)
        await ctx.step("cleanup", ran, ctx.run_id, "cleanup")


def machine(engine: QueueEngine, runs: RunEngine, name: str, size: int = 100) -> Machine:
    return Machine(
        engine, runs, [sticky_loop, two_signals, cleans_up], name=name, cache=RunCache(size)
    )


async def replays(runs: RunEngine, run_id: str) -> list[str]:
    """How each activation began: 'sticky' (a delta) or 'full'."""
    return [e["replay"] for e in await runs.timeline(run_id) if e["event"] == "activation_started"]


def steps_ran(run_id: str) -> list[str]:
    return [r.split(":", 1)[1] for r in RAN if r.startswith(f"{run_id}:")]


async def test_a_kept_run_goes_on_from_memory_and_runs_each_step_once(
    engine: QueueEngine, runs: RunEngine
) -> None:
    m1 = machine(engine, runs, "m1")
    started = await runs.start("sticky_loop", 4, version=1)

    run = await m1.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == 0 + 1 + 2 + 3
    assert await replays(runs, started.id) == ["full", "sticky", "sticky", "sticky", "sticky"]
    assert steps_ran(started.id) == ["s0", "s1", "s2", "s3"]
    assert m1.cache is not None and m1.cache.hits == 4 and len(m1.cache) == 0


async def begin_signal_wait(
    engine: QueueEngine, runs: RunEngine, run_id: str, machine: str
) -> LeasedJob:
    """Claim the run's activation on ``machine``, begin it and suspend on signal 'go'
    at position 0; returns the activation's job."""
    job = leased((await engine.claim(machine, ["wf:two_signals@1"], 1))[0])
    await runs.begin(run_id, job.id, job.token, machine=machine)
    await runs.suspend(run_id, job.id, job.token, SignalWait(0, "go"), machine=machine)
    await engine.complete(job.id, job.token, None, machine=machine)
    return job


async def test_begin_answers_only_the_asked_records_while_the_run_is_parked_there(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("two_signals", None, version=1)
    first = await begin_signal_wait(engine, runs, started.id, "m1")
    await runs.signal(started.id, "go", {"n": 1})
    job = leased((await engine.claim("m1", ["wf:two_signals@1"], 1))[0])

    state = await runs.begin(
        started.id, job.id, job.token, machine="m1", resume=first.id, positions=[0]
    )

    assert state.delta is True
    assert list(state.steps) == [0] and state.steps[0]["result"] == {"n": 1}


async def test_begin_answers_the_whole_history_to_a_machine_the_run_is_not_parked_on(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("two_signals", None, version=1)
    first = await begin_signal_wait(engine, runs, started.id, "m1")
    await runs.signal(started.id, "go", 1)
    job = leased((await engine.claim("m2", ["wf:two_signals@1"], 1))[0])

    # m2 claims to have kept the run after m1's activation: it did not.
    state = await runs.begin(
        started.id, job.id, job.token, machine="m2", resume=first.id, positions=[0]
    )

    assert state.delta is False and list(state.steps) == [0]


async def test_begin_answers_the_whole_history_after_another_activation_began(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("two_signals", None, version=1)
    first = await begin_signal_wait(engine, runs, started.id, "m1")
    await runs.signal(started.id, "go", 1)
    lost = leased((await engine.claim("m2", ["wf:two_signals@1"], 1))[0])
    await runs.begin(started.id, lost.id, lost.token, machine="m2")  # then m2 dies
    await engine.machine_dead("m2")
    job = leased((await engine.claim("m1", ["wf:two_signals@1"], 1))[0])

    state = await runs.begin(
        started.id, job.id, job.token, machine="m1", resume=first.id, positions=[0]
    )

    assert state.delta is False


async def test_a_run_that_went_on_elsewhere_replays_in_full_where_it_was_kept(
    engine: QueueEngine, runs: RunEngine
) -> None:
    m1, m2 = machine(engine, runs, "m1"), machine(engine, runs, "m2")
    started = await runs.start("two_signals", None, version=1)
    await m1.turn()  # kept on m1, waiting for "one"
    await runs.signal(started.id, "one", "x")
    await m2.turn()  # goes on on m2 (full replay), kept there waiting for "two"
    await runs.signal(started.id, "two", "y")

    await m1.turn()  # m1's copy is stale: it must not go on from it

    run = await runs.get(started.id)
    assert run.status == RunStatus.COMPLETED and run.result == [1, "x", 2, "y"]
    assert await replays(runs, started.id) == ["full", "full", "full"]
    assert m1.cache is not None and m1.cache.misses == 1 and m1.cache.hits == 0
    assert steps_ran(started.id) == ["a", "b"]


async def test_a_retried_run_replays_in_full_on_the_machine_that_kept_it(
    engine: QueueEngine, runs: RunEngine, redis: Redis, config: QueueConfig
) -> None:
    m1 = machine(engine, runs, "m1")
    started = await runs.start("two_signals", None, version=1)
    await m1.turn()  # kept, waiting for "one"
    pk = config.keys.for_id(started.id)
    await redis.zadd(pk.run_deadlines, {started.id: 0})  # its workflow timeout is up
    await redis.hset(pk.run(started.id), "deadline", 0)  # type: ignore[misc]
    assert await runs.expire_runs() == 1
    await runs.retry(started.id)  # the history may be rewritten: no kept copy is good
    await runs.signal(started.id, "one", "x")
    await runs.signal(started.id, "two", "y")

    run = await m1.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == [1, "x", 2, "y"]
    # After the retry: in full (the kept copy was stale), then from memory again.
    assert await replays(runs, started.id) == ["full", "full", "sticky", "sticky"]
    assert m1.cache is not None and m1.cache.misses == 1 and m1.cache.hits == 2
    assert steps_ran(started.id) == ["a", "b"]


async def test_continue_as_new_from_a_kept_run_starts_each_generation_in_full(
    engine: QueueEngine, runs: RunEngine
) -> None:
    @workflow(name="sticky_counter")
    async def counter(ctx: WorkflowContext, n: int) -> int:
        if n >= 3:
            return n
        n = await ctx.step("inc", lambda: n + 1)
        await ctx.sleep(0)
        ctx.continue_as_new(n)

    m1 = Machine(engine, runs, [counter], cache=RunCache(10))
    started = await runs.start("sticky_counter", 0, version=1)

    run = await m1.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == 3 and run.continued == 3
    assert await replays(runs, started.id) == ["full", "sticky"] * 3 + ["full"]


async def test_a_run_let_go_of_from_a_full_cache_replays_in_full_without_rerunning_steps(
    engine: QueueEngine, runs: RunEngine
) -> None:
    m1 = machine(engine, runs, "m1", size=1)
    first = await runs.start("two_signals", None, version=1)
    await m1.turn()
    second = await runs.start("two_signals", None, version=1)
    await m1.turn()  # keeping the second lets go of the first
    await runs.signal(second.id, "one", "x")
    await m1.turn()
    await runs.signal(first.id, "one", "x")
    await m1.turn()

    assert await replays(runs, second.id) == ["full", "sticky"]
    assert await replays(runs, first.id) == ["full", "full"]
    assert m1.cache is not None and m1.cache.evictions == 2  # the first, then the second
    assert steps_ran(first.id) == ["a", "b"] and steps_ran(second.id) == ["a", "b"]


async def test_the_code_of_a_run_let_go_of_unwinds_and_records_nothing(
    engine: QueueEngine, runs: RunEngine
) -> None:
    m1 = machine(engine, runs, "m1")
    started = await runs.start("cleans_up", None, version=1)
    await m1.turn()
    assert m1.cache is not None
    kept = m1.cache.take(started.id, "wf:cleans_up@1")
    assert kept is not None

    m1.cache.let_go(kept)
    await asyncio.wait_for(kept.task, 5)

    assert CLEANED.count(started.id) == 1  # its finally block ran ...
    assert steps_ran(started.id) == []  # ... but its step was refused
    assert list(await runs.steps(started.id)) == [0]  # the wait, and no "cleanup"
    await runs.signal(started.id, "go", "ok")
    run = await m1.drain(started.id)
    assert run.status == RunStatus.COMPLETED and run.result == "ok"
    assert steps_ran(started.id) == ["cleanup"]


async def test_a_kept_run_is_let_go_of_for_an_activation_of_another_version(
    engine: QueueEngine, runs: RunEngine
) -> None:
    m1 = machine(engine, runs, "m1")
    started = await runs.start("cleans_up", None, version=1)
    await m1.turn()
    assert m1.cache is not None

    assert m1.cache.take(started.id, "wf:cleans_up@2") is None

    assert m1.cache.evictions == 1 and started.id not in m1.cache


async def test_a_worker_keeping_no_runs_replays_every_activation_in_full(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    m1 = machine(engine, runs, "m1", size=0)
    started = await runs.start("sticky_loop", 2, version=1)

    run = await m1.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == 1
    assert await replays(runs, started.id) == ["full", "full", "full"]
    assert steps_ran(started.id) == ["s0", "s1"]


# -- routing: the next activation goes to the machine that keeps the run --------------

WF = "wf:two_signals@1"


async def kept_on_m1(engine: QueueEngine, runs: RunEngine) -> str:
    """A run kept on a live m1, woken (its next activation queued); returns its id."""
    await engine.heartbeat("m1")
    started = await runs.start("two_signals", None, version=1)
    await begin_signal_wait(engine, runs, started.id, "m1")
    await runs.signal(started.id, "go", 1)
    return started.id


async def test_the_next_activation_of_a_kept_run_goes_to_the_machine_that_keeps_it(
    engine: QueueEngine, runs: RunEngine
) -> None:
    run_id = await kept_on_m1(engine, runs)

    assert await engine.claim("m2", [WF], 10) == []
    claimed = await engine.claim("m1", [WF], 10)

    assert [job.parent for job in claimed] == [run_id] and claimed[0].function == WF


async def test_an_activation_unclaimed_by_its_machine_goes_to_any_after_the_sticky_timeout(
    engine: QueueEngine, runs: RunEngine, redis: Redis, config: QueueConfig
) -> None:
    run_id = await kept_on_m1(engine, runs)
    pk = config.keys.for_id(run_id)
    assert await engine.unstick() == 0  # not yet: m1 has its sticky timeout to take it
    await redis.zadd(pk.sticky, {f"{run_id}:a2": 0})  # the timeout is up

    assert await engine.unstick() == 1

    claimed = await engine.claim("m2", [WF], 10)
    assert [job.parent for job in claimed] == [run_id]
    assert await engine.claim("m1", [WF], 10) == []  # its sticky entry is stale now


async def test_a_dead_machines_kept_runs_go_to_any_machine_at_once(
    engine: QueueEngine, runs: RunEngine
) -> None:
    run_id = await kept_on_m1(engine, runs)

    await engine.machine_dead("m1")  # (it left: no cutoff)

    assert [job.parent for job in await engine.claim("m2", [WF], 10)] == [run_id]


async def test_an_activation_for_a_version_its_machine_no_longer_serves_goes_to_any(
    engine: QueueEngine, runs: RunEngine
) -> None:
    run_id = await kept_on_m1(engine, runs)

    # m1 now serves another version only (a new deploy under the same machine id).
    assert await engine.claim("m1", ["wf:two_signals@2"], 10) == []

    assert [job.parent for job in await engine.claim("m2", [WF], 10)] == [run_id]


async def test_a_run_kept_by_a_machine_without_a_heartbeat_record_is_not_routed_to_it(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("two_signals", None, version=1)
    await begin_signal_wait(engine, runs, started.id, "m1")  # m1 never sent a heartbeat
    await runs.signal(started.id, "go", 1)

    assert [job.parent for job in await engine.claim("m2", [WF], 10)] == [started.id]


async def test_a_machine_serving_no_workflow_never_reads_a_sticky_queue(
    engine: QueueEngine, runs: RunEngine
) -> None:
    run_id = await kept_on_m1(engine, runs)

    assert await engine.claim("m1", ["plain_function"], 10) == []

    assert [job.parent for job in await engine.claim("m1", [WF], 10)] == [run_id]


async def test_a_run_whose_suspension_is_refused_is_not_kept(
    engine: QueueEngine, runs: RunEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_suspend = runs.suspend

    async def cancelled_meanwhile(run_id: str, *args: Any, **kwargs: Any) -> str:
        await runs.cancel(run_id)
        return await real_suspend(run_id, *args, **kwargs)

    monkeypatch.setattr(runs, "suspend", cancelled_meanwhile)
    m1 = machine(engine, runs, "m1")
    started = await runs.start("two_signals", None, version=1)

    await m1.turn()

    assert m1.cache is not None and started.id not in m1.cache and m1.cache.evictions == 1
    assert (await runs.get(started.id)).status == RunStatus.CANCELLED


async def test_an_orchestrator_tick_hands_an_overdue_sticky_activation_to_any_machine(
    engine: QueueEngine, runs: RunEngine, redis: Redis, config: QueueConfig
) -> None:
    run_id = await kept_on_m1(engine, runs)
    await redis.zadd(config.keys.for_id(run_id).sticky, {f"{run_id}:a2": 0})

    done = await Orchestrator(engine).tick()

    assert done["activations_unstuck"] == 1
    assert [job.parent for job in await engine.claim("m2", [WF], 10)] == [run_id]
