"""Where a retry resumes: at the failure the code did not handle (manual and automatic
retries alike), reopening every failed child of a gather and nothing else; and the terms
(attempts, timeout) children get from their function's registration."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from wf_helpers import Machine

from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import ChildFailed, StepFailed, WorkflowContext
from tether.workers.workflow import workflow

calls: Counter[str] = Counter()
broken: set[str] = set()  # names that fail once, then work


def effect(name: str) -> str:
    calls[name] += 1
    if name in broken:
        broken.discard(name)
        raise RuntimeError(f"{name} broke")
    return name


@pytest.fixture(autouse=True)
def clean() -> None:
    calls.clear()
    broken.clear()


async def wake_retry(redis: Redis, config: QueueConfig, runs: RunEngine, run_id: str) -> None:
    """Bring a scheduled workflow retry due now (instead of waiting out its backoff)."""
    pk = config.keys.for_id(run_id)
    await redis.zadd(pk.timers, {run_id: 0})
    await redis.hset(pk.run(run_id), "wake_at", 0)  # type: ignore[misc]
    await runs.wake_timers()


async def tolerant_saga(ctx: WorkflowContext) -> str:
    with contextlib.suppress(StepFailed):  # handled: the run goes on without "a"
        await ctx.step("a", effect, "a")
    await ctx.step("b", effect, "b")
    if "c" in broken:  # an unrelated bug in plain code, fixed before the retry
        broken.discard("c")
        raise KeyError("c")
    return "done"


saga = workflow(tolerant_saga, name="saga")
saga_auto = workflow(tolerant_saga, name="saga_auto", max_attempts=2)


async def test_a_manual_retry_resumes_after_the_last_record_not_at_a_handled_failure(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.update({"a", "c"})
    started = await runs.start("saga", None, version=1)
    machine = machine_factory([saga])
    failed = await machine.drain(started.id)

    await runs.retry(started.id)
    run = await machine.drain(started.id)

    assert failed.status == RunStatus.FAILED and failed.error is not None
    assert failed.error.type == "KeyError"
    assert run.status == RunStatus.COMPLETED and run.result == "done"
    assert calls == {"a": 1, "b": 1}
    steps = await runs.steps(started.id)
    assert [(s["name"], s["status"]) for s in steps.values()] == [
        ("a", "failed"),
        ("b", "completed"),
    ]


async def test_an_automatic_retry_resumes_after_the_last_record_not_at_a_handled_failure(
    redis: Redis, config: QueueConfig, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.update({"a", "c"})
    started = await runs.start("saga_auto", None, version=1)
    machine = machine_factory([saga_auto])
    waiting = await machine.drain(started.id)

    await wake_retry(redis, config, runs, started.id)
    run = await machine.drain(started.id)

    assert waiting.status == RunStatus.WAITING
    assert run.status == RunStatus.COMPLETED and calls == {"a": 1, "b": 1}


@workflow(name="compensating")
async def compensating(ctx: WorkflowContext) -> str:
    try:
        await ctx.step("charge", effect, "charge")
    except StepFailed:
        await ctx.step("refund", effect, "refund")
        raise
    await ctx.step("ship", effect, "ship")
    return "shipped"


async def test_a_retry_reruns_the_failed_step_and_drops_the_compensations_recorded_after_it(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.add("charge")
    started = await runs.start("compensating", None, version=1)
    machine = machine_factory([compensating])
    failed = await machine.drain(started.id)

    await runs.retry(started.id)
    run = await machine.drain(started.id)

    assert failed.status == RunStatus.FAILED
    assert run.status == RunStatus.COMPLETED and run.result == "shipped"
    assert calls == {"charge": 2, "refund": 1, "ship": 1}
    steps = await runs.steps(started.id)
    assert [(s["name"], s["status"]) for s in steps.values()] == [
        ("charge", "completed"),
        ("ship", "completed"),
    ]


def flaky(i: int) -> int:
    return int(effect(f"child{i}").removeprefix("child")) * 10


@workflow(name="fan_out")
async def fan_out(ctx: WorkflowContext, n: int) -> list[int]:
    results: list[int] = await ctx.gather(*(ctx.call("flaky", i) for i in range(n)))
    return results


async def test_one_retry_reopens_every_failed_child_of_a_gather_and_only_those(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.update({"child3", "child7", "child11"})
    started = await runs.start("fan_out", 20, version=1)
    machine = machine_factory([fan_out], {"flaky": flaky})
    failed = await machine.drain(started.id)

    await runs.retry(started.id)
    run = await machine.drain(started.id)

    assert failed.status == RunStatus.FAILED
    assert run.status == RunStatus.COMPLETED
    assert run.result == [i * 10 for i in range(20)]
    assert {name for name, n in calls.items() if n == 2} == {"child3", "child7", "child11"}
    assert sum(calls.values()) == 23


@workflow(name="fan_out_auto", max_attempts=3)
async def fan_out_auto(ctx: WorkflowContext) -> list[int]:
    results: list[int] = await ctx.gather(*(ctx.call("flaky", i) for i in range(3)))
    return results


async def test_automatic_retries_rerun_every_child_that_failed_once(
    redis: Redis, config: QueueConfig, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.update({"child0", "child1", "child2"})
    started = await runs.start("fan_out_auto", None, version=1)
    machine = machine_factory([fan_out_auto], {"flaky": flaky})
    waiting = await machine.drain(started.id)

    await wake_retry(redis, config, runs, started.id)
    run = await machine.drain(started.id)

    assert waiting.status == RunStatus.WAITING
    assert run.status == RunStatus.COMPLETED and run.result == [0, 10, 20]
    assert calls == {"child0": 2, "child1": 2, "child2": 2}
    assert run.failures == 1


@workflow(name="handles_some")
async def handles_some(ctx: WorkflowContext) -> Any:
    first = await ctx.gather(ctx.call("flaky", 0), ctx.call("flaky", 1), return_exceptions=True)
    second = await ctx.call("flaky", 2)
    return [isinstance(first[0], ChildFailed), first[1], second]


async def test_a_failed_child_that_was_handled_is_not_reopened_by_a_retry(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.update({"child0", "child2"})
    started = await runs.start("handles_some", None, version=1)
    machine = machine_factory([handles_some], {"flaky": flaky})
    await machine.drain(started.id)

    await runs.retry(started.id)
    run = await machine.drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == [True, 10, 20]
    assert calls == {"child0": 1, "child1": 1, "child2": 2}


# -- children's terms ---------------------------------------------------------------------


@workflow(name="one_child")
async def one_child(ctx: WorkflowContext, overrides: dict[str, Any]) -> Any:
    return await ctx.call("slow_fn", 1, **overrides)


async def test_a_child_gets_the_attempts_and_timeout_its_function_registered(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("one_child", {}, version=1)
    machine = machine_factory(
        [one_child], known=["slow_fn"], specs={"slow_fn": {"max_attempts": 1, "timeout": 7.5}}
    )
    await machine.drain(started.id)

    child = await engine.get_job(f"{started.id}:c0")

    assert (child.max_attempts, child.timeout_ms) == (1, 7500)


async def test_a_child_call_overrides_its_functions_registered_terms(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("one_child", {"max_attempts": 4, "timeout": 2}, version=1)
    machine = machine_factory(
        [one_child], known=["slow_fn"], specs={"slow_fn": {"max_attempts": 1, "timeout": 7.5}}
    )
    await machine.drain(started.id)

    child = await engine.get_job(f"{started.id}:c0")

    assert (child.max_attempts, child.timeout_ms) == (4, 2000)


@workflow(name="waits_in_compensation")
async def waits_in_compensation(ctx: WorkflowContext) -> str:
    try:
        await ctx.step("charge", effect, "charge")
    except StepFailed:
        await ctx.wait_for_signal("refund_ok")
        raise
    return "charged"


async def test_a_signal_consumed_after_the_resume_point_is_buffered_again_by_a_retry(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    broken.add("charge")
    started = await runs.start("waits_in_compensation", None, version=1)
    machine = machine_factory([waits_in_compensation])
    await machine.drain(started.id)
    assert await runs.signal(started.id, "refund_ok", {"n": 1}) == "woken"
    failed = await machine.drain(started.id)

    await runs.retry(started.id)
    run = await machine.drain(started.id)

    assert failed.status == RunStatus.FAILED and failed.held_signals == ()
    assert run.status == RunStatus.COMPLETED and run.result == "charged"
    assert run.held_signals == ("refund_ok",)
