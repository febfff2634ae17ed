"""Every edge of ``RUN_TRANSITIONS``, driven by the script the table names for it, and
no edge the table does not name; and the rows of the job table ``TRANSITIONS`` whose
jobs the run scripts (or the job scripts' run hook) create or cancel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from queue_helpers import expire_lease, silence_machine
from redis.asyncio import Redis

from tether.protocol import (
    ApprovalWait,
    ChildrenWait,
    ChildSpec,
    ErrorInfo,
    JobStatus,
    RunStatus,
    SignalWait,
    SleepWait,
    Wait,
    activation_function,
)
from tether.queue.engine import QueueEngine
from tether.queue.records import ClaimedJob
from tether.queue.runs import RunEngine
from tether.queue.states import RUN_SCRIPTS, RUN_TRANSITIONS, TRANSITIONS

BOOM = ErrorInfo(type="E", message="boom")
RUN, FN = "r", activation_function("w", 1)
Q, R, W = RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING
DONE, FAILED, CANCELLED = RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED

Action = Callable[[], Awaitable[object]]
Setup = Callable[[QueueEngine, RunEngine, Redis], Awaitable[Action]]
EDGES: dict[tuple[RunStatus | None, RunStatus, str], Setup] = {}
WATCHED: dict[tuple[RunStatus | None, RunStatus, str], str] = {}  # the run, if not RUN
KID, KID_FN = f"{RUN}:w0", activation_function("kid", 1)


def edge(
    source: RunStatus | None, target: RunStatus, script: str, run: str = RUN
) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        EDGES[(source, target, script)] = setup
        WATCHED[(source, target, script)] = run
        return setup

    return register


async def queued(runs: RunEngine) -> None:
    await runs.start("w", None, run_id=RUN, version=1)


async def running(engine: QueueEngine, runs: RunEngine, *, max_attempts: int = 1) -> ClaimedJob:
    await queued(runs)
    job = (await engine.claim("m1", [FN], 1))[0]
    await engine.heartbeat("m1")
    await runs.begin(RUN, job.id, job.token, max_attempts=max_attempts, machine=job.machine)
    return job


async def waiting_on_child(engine: QueueEngine, runs: RunEngine) -> ClaimedJob:
    """The run waits on child ``r:c0`` (one attempt), leased to machine m2."""
    act = await running(engine, runs)
    child = ChildSpec(0, "fn", 1, max_attempts=1)
    await runs.suspend(RUN, act.id, act.token, ChildrenWait((0,)), [child], machine=act.machine)
    job = (await engine.claim("m2", ["fn"], 1))[0]
    await engine.heartbeat("m2")
    return job


async def sleeping(engine: QueueEngine, runs: RunEngine, kind: str = "sleep") -> None:
    act = await running(engine, runs)
    wait: Wait = SleepWait(0, 60_000, "k")
    if kind == "approval":
        wait = ApprovalWait(0, "k")
    elif kind == "signal":
        wait = SignalWait(0, "k")
    await runs.suspend(RUN, act.id, act.token, wait, machine=act.machine)


async def past_deadline(redis: Redis, engine: QueueEngine) -> None:
    pk = engine.keys.for_id(RUN)
    await redis.hset(pk.run(RUN), mapping={"deadline": 0, "timeout_ms": 1})  # type: ignore[misc]
    await redis.zadd(pk.run_deadlines, {RUN: 0})


@edge(None, Q, "start_run")
async def start(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    return lambda: queued(runs)


@edge(Q, Q, "assign_version")
async def assign(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await runs.start("w", None, run_id=RUN)
    return lambda: runs.assign_version(RUN, 1)


@edge(Q, R, "begin_activation")
async def begin(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await queued(runs)
    job = (await engine.claim("m1", [FN], 1))[0]
    return lambda: runs.begin(RUN, job.id, job.token, machine=job.machine)


@edge(Q, CANCELLED, "cancel_run")
async def cancel_queued(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await queued(runs)
    return lambda: runs.cancel(RUN)


@edge(Q, FAILED, "expire_runs")
async def expire_queued(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await queued(runs)
    await past_deadline(redis, engine)
    return runs.expire_runs


@edge(Q, FAILED, "cancel")
async def activation_cancelled(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await queued(runs)
    return lambda: engine.cancel(f"{RUN}:a1")


@edge(R, R, "record_step")
async def record(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    step = {"name": "s", "kind": "step", "status": "completed", "result": 1}
    return lambda: runs.record_step(RUN, job.id, job.token, 0, step, machine=job.machine)


@edge(R, DONE, "complete_run")
async def complete_run(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    return lambda: runs.complete(RUN, job.id, job.token, "ok", machine=job.machine)


@edge(R, W, "fail_run")
async def fail_run_retry(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs, max_attempts=2)
    return lambda: runs.fail(RUN, job.id, job.token, BOOM, machine=job.machine)


@edge(R, FAILED, "fail_run")
async def fail_run_final(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs, max_attempts=2)
    return lambda: runs.fail(RUN, job.id, job.token, BOOM, retryable=False, machine=job.machine)


@edge(R, W, "suspend_run")
async def suspend_waits(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    return lambda: runs.suspend(
        RUN, job.id, job.token, SleepWait(0, 60_000, "nap"), machine=job.machine
    )


@edge(R, Q, "suspend_run")
async def suspend_satisfied(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    return lambda: runs.suspend(RUN, job.id, job.token, SleepWait(0, 0, "nap"), machine=job.machine)


@edge(R, Q, "continue_run")
async def continue_as_new(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    return lambda: runs.continue_as_new(RUN, job.id, job.token, {"n": 2}, machine=job.machine)


@edge(R, CANCELLED, "cancel_run")
async def cancel_running(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await running(engine, runs)
    return lambda: runs.cancel(RUN)


@edge(R, FAILED, "expire_runs")
async def expire_running(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await running(engine, runs)
    await past_deadline(redis, engine)
    return runs.expire_runs


@edge(R, FAILED, "fail")
async def activation_failed(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    return lambda: engine.fail(job.id, job.token, BOOM, retryable=False, machine=job.machine)


async def last_attempt(engine: QueueEngine, runs: RunEngine) -> ClaimedJob:
    runs.activation_max_attempts = 1
    return await running(engine, runs)


@edge(R, FAILED, "reap")
async def activation_lease_lost(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await last_attempt(engine, runs)
    await expire_lease(redis, engine, job.id)
    return engine.reap


@edge(R, FAILED, "machine_dead")
async def activation_machine_dead(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await last_attempt(engine, runs)
    await silence_machine(redis, engine, "m1")
    return engine.reap_dead_machines


@edge(R, FAILED, "release")
async def activation_released(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    await engine.cancel(job.id)  # requested: it ends when its machine hands it back
    return lambda: engine.release(job.id, job.token, machine=job.machine)


@edge(W, Q, "wake_timers")
async def timer(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await sleeping(engine, runs)
    pk = engine.keys.for_id(RUN)
    await redis.zadd(pk.timers, {RUN: 0})
    await redis.hset(pk.run(RUN), "wake_at", 0)  # type: ignore[misc]
    return runs.wake_timers


@edge(W, Q, "decide_approval")
async def decide(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await sleeping(engine, runs, "approval")
    return lambda: runs.decide(RUN, "k", approved=True)


@edge(W, Q, "send_signal")
async def signal(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await sleeping(engine, runs, "signal")
    return lambda: runs.signal(RUN, "k", 1)


@edge(W, Q, "complete")
async def child_completes(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    child = await waiting_on_child(engine, runs)
    return lambda: engine.complete(child.id, child.token, 1, machine=child.machine)


@edge(W, Q, "fail")
async def child_fails(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    child = await waiting_on_child(engine, runs)
    return lambda: engine.fail(child.id, child.token, BOOM, machine=child.machine)


@edge(W, Q, "cancel")
async def child_cancelled(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    act = await running(engine, runs)
    await runs.suspend(
        RUN,
        act.id,
        act.token,
        ChildrenWait((0,)),
        [ChildSpec(0, "fn", 1)],
        machine=act.machine,
    )
    return lambda: engine.cancel(f"{RUN}:c0")


@edge(W, Q, "reap")
async def child_lease_lost(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    child = await waiting_on_child(engine, runs)
    await expire_lease(redis, engine, child.id)
    return engine.reap


@edge(W, Q, "machine_dead")
async def child_machine_dead(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await waiting_on_child(engine, runs)
    await silence_machine(redis, engine, "m2")
    return engine.reap_dead_machines


@edge(W, Q, "release")
async def child_released(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    child = await waiting_on_child(engine, runs)
    await engine.cancel(child.id)
    return lambda: engine.release(child.id, child.token, machine=child.machine)


@edge(W, CANCELLED, "cancel_run")
async def cancel_waiting(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await sleeping(engine, runs)
    return lambda: runs.cancel(RUN)


@edge(W, FAILED, "expire_runs")
async def expire_waiting(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await sleeping(engine, runs)
    await past_deadline(redis, engine)
    return runs.expire_runs


@edge(RunStatus.FAILED, Q, "retry_run")
async def retry(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await running(engine, runs)
    await runs.fail(RUN, job.id, job.token, BOOM, retryable=False, machine=job.machine)
    return lambda: runs.retry(RUN)


def kid_spec() -> ChildSpec:
    return ChildSpec(0, "kid", None, workflow=True, version=1)


@edge(None, Q, "suspend_run", run=KID)
async def suspend_starts_a_child_run(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    act = await running(engine, runs)
    wait = ChildrenWait((0,))
    return lambda: runs.suspend(RUN, act.id, act.token, wait, [kid_spec()], machine=act.machine)


async def waiting_on_child_run(
    engine: QueueEngine, runs: RunEngine, *, max_attempts: int = 1
) -> ClaimedJob:
    """The run waits on child run ``r:w0``, whose activation is running (its job)."""
    act = await running(engine, runs)
    await runs.suspend(
        RUN, act.id, act.token, ChildrenWait((0,)), [kid_spec()], machine=act.machine
    )
    job = (await engine.claim("m2", [KID_FN], 1))[0]
    await runs.begin(KID, job.id, job.token, max_attempts=max_attempts, machine=job.machine)
    return job


@edge(W, Q, "complete_run")
async def child_run_completes(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await waiting_on_child_run(engine, runs)
    return lambda: runs.complete(KID, job.id, job.token, 1, machine=job.machine)


@edge(W, Q, "fail_run")
async def child_run_fails(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    job = await waiting_on_child_run(engine, runs)
    return lambda: runs.fail(KID, job.id, job.token, BOOM, retryable=False, machine=job.machine)


@edge(W, Q, "cancel_run")
async def child_run_cancelled(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await waiting_on_child_run(engine, runs)
    return lambda: runs.cancel(KID)


@edge(W, Q, "expire_runs")
async def child_run_expires(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await waiting_on_child_run(engine, runs)
    pk = engine.keys.for_id(KID)
    await redis.hset(pk.run(KID), mapping={"deadline": 0, "timeout_ms": 1})  # type: ignore[misc]
    await redis.zadd(pk.run_deadlines, {KID: 0})
    return runs.expire_runs


def test_every_edge_of_the_run_transition_table_has_a_driver_and_no_more() -> None:
    table = {(s, t, script) for (s, t), scripts in RUN_TRANSITIONS.items() for script in scripts}

    assert set(EDGES) == table


@pytest.mark.parametrize(
    ("source", "target", "script"), list(EDGES), ids=[f"{s}-{t}-{n}" for s, t, n in EDGES]
)
async def test_each_script_moves_the_run_as_the_table_names(
    engine: QueueEngine,
    redis: Redis,
    source: RunStatus | None,
    target: RunStatus,
    script: str,
) -> None:
    runs = RunEngine(redis, engine.config)
    action = await EDGES[(source, target, script)](engine, runs, redis)
    watched = WATCHED[(source, target, script)]
    key = engine.keys.for_id(watched).run(watched)
    before = await redis.hget(key, "status")  # type: ignore[misc]
    assert before == (source.value if source else None)

    await action()

    assert await redis.hget(key, "status") == target.value  # type: ignore[misc]


# -- the jobs the run scripts create and cancel (rows of the job table, TRANSITIONS) -------

J = JobStatus
JOB_EDGES: dict[tuple[JobStatus | None, JobStatus, str], tuple[Setup, str]] = {
    (None, J.QUEUED, "start_run"): (start, f"{RUN}:a1"),
    (None, J.QUEUED, "assign_version"): (assign, f"{RUN}:a1"),
    (None, J.QUEUED, "decide_approval"): (decide, f"{RUN}:a2"),
    (None, J.QUEUED, "send_signal"): (signal, f"{RUN}:a2"),
    (None, J.QUEUED, "wake_timers"): (timer, f"{RUN}:a2"),
    (None, J.QUEUED, "retry_run"): (retry, f"{RUN}:a2"),
    (None, J.QUEUED, "continue_run"): (continue_as_new, f"{RUN}:a2"),
    (None, J.QUEUED, "complete"): (child_completes, f"{RUN}:a2"),
    (None, J.QUEUED, "fail"): (child_fails, f"{RUN}:a2"),
    (None, J.QUEUED, "cancel"): (child_cancelled, f"{RUN}:a2"),
    (None, J.QUEUED, "reap"): (child_lease_lost, f"{RUN}:a2"),
    (None, J.QUEUED, "machine_dead"): (child_machine_dead, f"{RUN}:a2"),
    (None, J.QUEUED, "release"): (child_released, f"{RUN}:a2"),
    (J.QUEUED, J.CANCELLED, "cancel_run"): (cancel_queued, f"{RUN}:a1"),
    (J.QUEUED, J.CANCELLED, "expire_runs"): (expire_queued, f"{RUN}:a1"),
    # A child run's end queues its parent's next activation.
    (None, J.QUEUED, "complete_run"): (child_run_completes, f"{RUN}:a2"),
    (None, J.QUEUED, "fail_run"): (child_run_fails, f"{RUN}:a2"),
    (None, J.QUEUED, "cancel_run"): (child_run_cancelled, f"{RUN}:a2"),
    (None, J.QUEUED, "expire_runs"): (child_run_expires, f"{RUN}:a2"),
}


def job_edge(
    source: JobStatus | None, target: JobStatus, script: str, job_id: str
) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        JOB_EDGES[(source, target, script)] = (setup, job_id)
        return setup

    return register


@job_edge(None, J.QUEUED, "suspend_run", f"{RUN}:c0")
async def suspend_starts_a_child(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    act = await running(engine, runs)
    wait = ChildrenWait((0,))
    return lambda: runs.suspend(
        RUN, act.id, act.token, wait, [ChildSpec(0, "fn", 1)], machine=act.machine
    )


async def child_delayed(engine: QueueEngine, runs: RunEngine) -> None:
    """The run waits on child ``r:c0``, which failed once and waits for its retry."""
    act = await running(engine, runs)
    child = ChildSpec(0, "fn", 1, max_attempts=2)
    await runs.suspend(RUN, act.id, act.token, ChildrenWait((0,)), [child], machine=act.machine)
    job = (await engine.claim("m2", ["fn"], 1))[0]
    await engine.fail(job.id, job.token, BOOM, machine=job.machine)


@job_edge(J.DELAYED, J.CANCELLED, "cancel_run", f"{RUN}:c0")
async def cancel_run_delayed_child(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await child_delayed(engine, runs)
    return lambda: runs.cancel(RUN)


@job_edge(J.DELAYED, J.CANCELLED, "expire_runs", f"{RUN}:c0")
async def expire_delayed_child(engine: QueueEngine, runs: RunEngine, redis: Redis) -> Action:
    await child_delayed(engine, runs)
    await past_deadline(redis, engine)
    return runs.expire_runs


def test_the_job_table_names_every_job_the_run_scripts_create_or_cancel() -> None:
    table = {(s, t, script) for (s, t), scripts in TRANSITIONS.items() for script in scripts}

    assert {e for e in table if e[2] in RUN_SCRIPTS or e in JOB_EDGES} == set(JOB_EDGES)


@pytest.mark.parametrize(
    ("source", "target", "script"),
    list(JOB_EDGES),
    ids=[f"{s}-{t}-{n}" for s, t, n in JOB_EDGES],
)
async def test_each_run_script_moves_its_jobs_as_the_job_table_names(
    engine: QueueEngine,
    redis: Redis,
    source: JobStatus | None,
    target: JobStatus,
    script: str,
) -> None:
    setup, job_id = JOB_EDGES[(source, target, script)]
    action = await setup(engine, RunEngine(redis, engine.config), redis)
    key = engine.keys.for_id(job_id).job(job_id)
    assert await redis.hget(key, "status") == (source.value if source else None)  # type: ignore[misc]

    await action()

    assert await redis.hget(key, "status") == target.value  # type: ignore[misc]
