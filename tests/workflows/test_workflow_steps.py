"""ctx.step: run once, record durably, replay from the record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from engine_backend import EngineBackend
from wf_helpers import Machine, leased

from tether.errors import LeaseNotHeld
from tether.protocol import SleepWait
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import NonDeterminismError, StepFailed, WorkflowContext
from tether.workers.workflow import workflow


def counting() -> tuple[dict[str, int], Callable[[str], Any]]:
    calls: dict[str, int] = {}

    def make(name: str) -> Any:
        async def fn(x: Any = None) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return {"step": name, "x": x}

        return fn

    return calls, make


async def test_a_workflow_of_steps_completes_with_its_result(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    _, make = counting()

    @workflow(name="three")
    async def three(ctx: WorkflowContext, n: int) -> Any:
        a = await ctx.step("a", make("a"), n)
        b = await ctx.step("b", make("b"), a["x"] + 1)
        return [a, b]

    started = await runs.start("three", 1, version=1)
    run = await machine_factory([three]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result == [{"step": "a", "x": 1}, {"step": "b", "x": 2}]


async def test_recorded_steps_return_their_record_on_replay_and_do_not_run_again(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    calls, make = counting()

    @workflow(name="replayed")
    async def replayed(ctx: WorkflowContext) -> Any:
        first = await ctx.step("first", make("first"))
        await ctx.sleep(0)
        second = await ctx.step("second", make("second"))
        return [first, second]

    started = await runs.start("replayed", None, version=1)
    run = await machine_factory([replayed]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.activations == 2
    assert calls == {"first": 1, "second": 1}


async def test_a_failed_step_is_recorded_and_raised_again_on_replay(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    seen: list[str] = []

    async def broken() -> None:
        raise ValueError("no stock")

    @workflow(name="handles")
    async def handles(ctx: WorkflowContext) -> str:
        try:
            await ctx.step("reserve", broken)
        except StepFailed as exc:
            seen.append(exc.error_type)
        await ctx.sleep(0)
        return "handled"

    started = await runs.start("handles", None, version=1)
    run = await machine_factory([handles]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert seen == ["ValueError", "ValueError"]  # live, then replayed from the record
    steps = await runs.steps(started.id)
    assert steps[0]["status"] == "failed" and steps[0]["error"]["message"] == "no stock"


async def test_step_retries_run_the_function_again_before_recording(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("flaky")
        return "ok"

    @workflow(name="flaky")
    async def flaky_wf(ctx: WorkflowContext) -> str:
        return str(await ctx.step("call", flaky, retries=2, backoff=0.001))

    started = await runs.start("flaky", None, version=1)
    run = await machine_factory([flaky_wf]).drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.result == "ok"
    assert len(attempts) == 3


async def test_replay_that_finds_another_step_fails_the_run_naming_both_steps(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    _, make = counting()

    @workflow(name="order", version=1)
    async def before(ctx: WorkflowContext) -> None:
        await ctx.step("charge", make("charge"))
        await ctx.sleep(0)

    @workflow(name="order", version=1)
    async def after(ctx: WorkflowContext) -> None:
        await ctx.step("ship", make("ship"))
        await ctx.sleep(0)

    started = await runs.start("order", None, version=1)
    await machine_factory([before]).turn()  # records "charge", then sleeps
    run = await machine_factory([after]).drain(started.id)

    assert run.status == RunStatus.FAILED
    assert run.error is not None and run.error.type == NonDeterminismError.__name__
    assert "'charge'" in run.error.message and "'ship'" in run.error.message


async def test_a_stale_activation_cannot_record_a_step(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("wf", None, version=1)
    job = (await engine.claim("m1", ["wf:wf@1"], 1))[0]
    await runs.begin(started.id, job.id, job.token, machine=job.machine)

    with pytest.raises(LeaseNotHeld):
        await runs.record_step(
            started.id,
            job.id,
            "999999",
            0,
            {"name": "s", "kind": "step", "status": "completed"},
            machine=job.machine,
        )
    assert await runs.steps(started.id) == {}


async def test_another_machine_cannot_write_to_an_activation_with_its_token(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("wf", None, version=1)
    job = (await engine.claim("m1", ["wf:wf@1"], 1))[0]
    with pytest.raises(LeaseNotHeld):
        await runs.begin(started.id, job.id, job.token, machine="m2")
    await runs.begin(started.id, job.id, job.token, machine="m1")
    step = {"name": "s", "kind": "step", "status": "completed", "result": 1}

    with pytest.raises(LeaseNotHeld):
        await runs.record_step(started.id, job.id, job.token, 0, step, machine="m2")
    with pytest.raises(LeaseNotHeld):
        await runs.complete(started.id, job.id, job.token, "forged", machine="m2")

    assert await runs.steps(started.id) == {}
    assert (await runs.get(started.id)).status == RunStatus.RUNNING
    await runs.complete(started.id, job.id, job.token, "real", machine="m1")
    assert (await runs.get(started.id)).result == "real"


async def test_an_activation_whose_lease_moved_on_cannot_record_or_suspend(
    engine: QueueEngine, runs: RunEngine
) -> None:
    started = await runs.start("wf", None, version=1)
    old = (await engine.claim("m1", ["wf:wf@1"], 1))[0]
    await runs.begin(started.id, old.id, old.token, machine=old.machine)
    await engine.machine_dead("m1")  # the lease ends; the activation is queued again
    new = (await engine.claim("m2", ["wf:wf@1"], 1))[0]
    state = await runs.begin(started.id, new.id, new.token, machine=new.machine)

    with pytest.raises(LeaseNotHeld):
        await EngineBackend(runs, leased(old), old.machine).runs.suspend(
            started.id,
            old.id,
            old.token,
            SleepWait(0, 10),
            machine=old.machine,
        )
    assert state.steps == {}
    assert (await runs.get(started.id)).status == RunStatus.RUNNING


async def test_workflow_input_is_validated_against_its_annotation(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    @workflow(name="typed")
    async def typed(ctx: WorkflowContext, count: int) -> int:
        return count * 2

    bad = await runs.start("typed", "not a number", version=1)
    run = await machine_factory([typed]).drain(bad.id)

    assert run.status == RunStatus.FAILED
    assert run.error is not None and "count" in run.error.message


@pytest.mark.parametrize("name", ["run_id", "input", "attempt", "steps", "position", "backend"])
def test_workflow_code_cannot_write_the_context_or_its_replay_state(name: str) -> None:
    from typing import cast

    from tether.protocol import ActivationState
    from tether.workers.context import RunBackend

    state = ActivationState("r", "wf", 1, None, {}, failures=0, retries=0)
    ctx = WorkflowContext.for_activation(state, cast(RunBackend, None))

    with pytest.raises(AttributeError):
        setattr(ctx, name, 1)
