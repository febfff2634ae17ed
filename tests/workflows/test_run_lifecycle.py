"""Starting, cancelling, retrying and timing out runs; version affinity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from wf_helpers import Machine

from tether.errors import IdempotencyConflict, InvalidTransition, NotFound
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.queue.states import JobStatus
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


async def test_the_same_run_id_returns_the_same_run(runs: RunEngine) -> None:
    first = await runs.start("wf", {"a": 1}, run_id="order-1", version=1)
    again = await runs.start("wf", {"a": 2}, run_id="order-1", version=1)

    assert first.created and not again.created
    assert (await runs.get("order-1")).input == {"a": 1}


async def test_a_run_id_of_another_workflow_is_an_idempotency_conflict(runs: RunEngine) -> None:
    await runs.start("wf", None, run_id="order-1", version=1)

    with pytest.raises(IdempotencyConflict):
        await runs.start("other", None, run_id="order-1", version=1)


async def test_an_unknown_run_is_not_found(runs: RunEngine) -> None:
    with pytest.raises(NotFound):
        await runs.get("nope")


async def test_a_run_without_a_version_waits_for_one_and_says_so(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("wf", None)
    run = await runs.get(started.id)

    assert run.status == RunStatus.QUEUED and run.version is None
    assert run.waiting_on == {"kind": "version", "workflow": "wf"}
    assert await runs.unversioned() == [(started.id, "wf")]

    assert await runs.assign_version(started.id, 3) is True
    assert await runs.assign_version(started.id, 4) is False
    job = (await engine.claim("m1", ["wf:wf@3"], 1))[0]
    assert job.parent == started.id
    assert await runs.unversioned() == []


@workflow(name="slow")
async def slow(ctx: WorkflowContext) -> Any:
    return await ctx.gather(ctx.call("never", 1), ctx.call("never", 2))


async def test_cancelling_a_run_cancels_its_children(
    engine: QueueEngine, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("slow", None, version=1)
    await machine_factory([slow], known=["never"]).drain(started.id)
    running_child = (await engine.claim("m2", ["never"], 1))[0]

    assert await runs.cancel(started.id) == "cancelled"

    run = await runs.get(started.id)
    assert run.status == RunStatus.CANCELLED
    queued, running = await engine.get_jobs([f"{started.id}:c0", f"{started.id}:c1"])
    statuses = {j.id: j for j in (queued, running) if j is not None}
    assert statuses[running_child.id].cancel_requested
    other = next(j for i, j in statuses.items() if i != running_child.id)
    assert other.status == JobStatus.CANCELLED


async def test_cancelling_a_finished_run_is_an_invalid_transition(runs: RunEngine) -> None:
    started = await runs.start("wf", None, version=1)
    await runs.cancel(started.id)

    with pytest.raises(InvalidTransition):
        await runs.cancel(started.id)


async def test_a_cancelled_run_refuses_its_running_activation(
    engine: QueueEngine, runs: RunEngine
) -> None:
    from tether.errors import LeaseNotHeld

    started = await runs.start("wf", None, version=1)
    job = (await engine.claim("m1", ["wf:wf@1"], 1))[0]
    await runs.begin(started.id, job.id, job.token, machine=job.machine)
    await runs.cancel(started.id)

    with pytest.raises((InvalidTransition, LeaseNotHeld)):
        await runs.complete(started.id, job.id, job.token, "late", machine=job.machine)
    assert (await runs.get(started.id)).result is None


side_effects: list[str] = []
fail_once: dict[str, bool] = {}


async def effect(name: str) -> str:
    side_effects.append(name)
    if fail_once.pop(name, False):
        raise RuntimeError(f"{name} broke")
    return name


@workflow(name="pipeline")
async def pipeline(ctx: WorkflowContext) -> list[str]:
    return [await ctx.step(n, effect, n) for n in ("a", "b", "c")]


async def test_retry_resumes_a_failed_run_from_its_failed_step(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    side_effects.clear()
    fail_once["b"] = True
    started = await runs.start("pipeline", None, version=1)
    machine = machine_factory([pipeline])
    failed = await machine.drain(started.id)

    assert await runs.retry(started.id) == "queued"
    run = await machine.drain(started.id)

    assert failed.status == RunStatus.FAILED
    assert run.status == RunStatus.COMPLETED and run.result == ["a", "b", "c"]
    assert side_effects == ["a", "b", "b", "c"]


async def test_only_a_failed_run_can_be_retried(runs: RunEngine) -> None:
    started = await runs.start("pipeline", None, version=1)

    with pytest.raises(InvalidTransition):
        await runs.retry(started.id)


@workflow(name="resilient", max_attempts=2)
async def resilient(ctx: WorkflowContext) -> list[str]:
    return [await ctx.step(n, effect, n) for n in ("a", "b", "c")]


async def test_a_workflow_retry_policy_resumes_from_the_failed_step_after_a_backoff(
    redis: Redis, config: QueueConfig, runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    side_effects.clear()
    fail_once["b"] = True
    started = await runs.start("resilient", None, version=1)
    machine = machine_factory([resilient])
    waiting = await machine.drain(started.id)
    pk = config.keys.for_id(started.id)
    await redis.zadd(pk.timers, {started.id: 0})
    await redis.hset(pk.run(started.id), "wake_at", 0)  # type: ignore[misc]

    await runs.wake_timers()
    run = await machine.drain(started.id)

    assert waiting.status == RunStatus.WAITING and waiting.waiting_on is not None
    assert waiting.waiting_on["kind"] == "retry"
    assert run.status == RunStatus.COMPLETED and side_effects == ["a", "b", "b", "c"]


@workflow(name="bounded", timeout=3600)
async def bounded(ctx: WorkflowContext) -> None:
    await ctx.call("never", 1)


async def test_a_run_past_its_timeout_fails_and_its_children_are_cancelled(
    redis: Redis,
    config: QueueConfig,
    engine: QueueEngine,
    runs: RunEngine,
    machine_factory: Callable[..., Machine],
) -> None:
    started = await runs.start("bounded", None, version=1)
    await machine_factory([bounded], known=["never"]).drain(started.id)
    pk = config.keys.for_id(started.id)
    await redis.zadd(pk.run_deadlines, {started.id: 0})
    await redis.hset(pk.run(started.id), "deadline", 0)  # type: ignore[misc]

    assert await runs.expire_runs() == 1

    run = await runs.get(started.id)
    assert run.status == RunStatus.FAILED
    assert run.error is not None and run.error.type == "WorkflowTimeout"
    assert (await engine.get_job(f"{started.id}:c0")).status == JobStatus.CANCELLED


async def test_a_lost_activation_with_no_attempts_left_fails_the_run(
    engine: QueueEngine, runs: RunEngine
) -> None:
    runs.activation_max_attempts = 1
    started = await runs.start("wf", None, version=1)
    await engine.claim("m1", ["wf:wf@1"], 1)

    await engine.machine_dead("m1")

    run = await runs.get(started.id)
    assert run.status == RunStatus.FAILED
    assert run.error is not None and "m1" in run.error.message


async def test_the_runs_index_forgets_expired_runs_but_keeps_old_live_ones(
    redis: Redis, config: QueueConfig, runs: RunEngine
) -> None:
    from tether.queue.runs import trim_runs_index

    expired = await runs.start("wf", None, version=1)
    alive = await runs.start("wf", None, version=1)
    pk = config.keys.for_id(expired.id)
    await redis.zadd(pk.runs, {expired.id: 1, alive.id: 1})  # both long past retention
    await redis.delete(pk.run(expired.id))  # this one's record expired

    assert await trim_runs_index(runs) == 1
    assert await redis.zrange(pk.runs, 0, -1) == [alive.id]
