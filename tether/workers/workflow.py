"""Durable workflows on a worker: the ``@workflow`` decorator, and the handler that runs
one activation of a run.

An activation is an ordinary job on the function ``wf:<name>@<version>`` (so a machine
only ever gets activations of the versions it serves). Its handler:

1. ``begin``: one call that checks the activation's fencing token, marks the run running
   and returns its input and every recorded step;
2. replays the workflow from the top with a ``WorkflowContext`` (``context.py``): recorded
   positions return their records, new steps run and are recorded (one call each);
3. ends with one command: ``complete`` (the result), ``fail`` (the error, and where the
   unhandled failure happened, so a retry resumes there) or ``suspend`` (what to wait on and
   the child jobs to start), each one atomic Lua transition that checks the token.

The job itself is then reported like any job. If the control plane refuses a write (the
activation is stale, the run was cancelled), the activation stops quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tether import tracing
from tether.errors import (
    ConfigurationError,
)
from tether.protocol import (
    ID_PATTERN,
    ActivationState,
    FunctionSpec,
    LeasedJob,
    TraceContext,
    activation_function,
    job_trace,
)
from tether.workers.binding import InputBinder
from tether.workers.context import (
    Abandon,
    ContinueAsNew,
    RunBackend,
    Suspend,
    WorkflowContext,
    resume_point,
)
from tether.workers.executor import error_info
from tether.workers.logs import rebind, workflow_scope
from tether.workers.registry import Registry
from tether.workers.sticky import Parked, RunCache, wait_positions

log = logging.getLogger("tether.workflow")

WorkflowFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A durable workflow: ``fn(ctx, input)`` at ``name`` and integer ``version``."""

    fn: WorkflowFn
    name: str
    version: int = 1
    timeout: float | None = None  # seconds for the whole run (None: no limit)
    max_attempts: int = 1  # runs of the code before the run fails (retry policy)

    @property
    def function(self) -> str:
        return activation_function(self.name, self.version)

    async def __call__(self, ctx: WorkflowContext, *args: Any, **kwargs: Any) -> Any:
        return await self.fn(ctx, *args, **kwargs)


def workflow(
    fn: WorkflowFn | None = None,
    *,
    name: str | None = None,
    version: int = 1,
    timeout: timedelta | float | None = None,
    max_attempts: int = 1,
) -> Any:
    """Declare a durable workflow: ``@workflow(name="order", version=2)`` on
    ``async def order(ctx, input)``. List it in ``WorkerSettings.workflows``.

    ``timeout`` bounds the whole run (it fails with WorkflowTimeout and its children are
    cancelled); ``max_attempts`` > 1 retries a run that raised, resuming where its
    unhandled failure happened."""

    def wrap(f: WorkflowFn) -> Workflow:
        wf_name = str(name or getattr(f, "__name__", ""))
        if not ID_PATTERN.match(wf_name) or "@" in wf_name:
            raise ConfigurationError(
                f"{wf_name!r} is not a valid workflow name: use letters, digits and _ . : -"
            )
        if not isinstance(version, int) or version < 1:
            raise ConfigurationError(f"workflow version must be an integer >= 1, not {version!r}")
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if seconds is not None and seconds <= 0:
            raise ConfigurationError(f"timeout must be positive, not {timeout!r}")
        return Workflow(f, wf_name, version, seconds, max_attempts)

    return wrap(fn) if fn is not None else wrap


# -- running one activation --------------------------------------------------------------


def _error(exc: BaseException) -> dict[str, Any]:
    info = error_info(exc)
    return {k: v for k, v in info.items() if v is not None}


async def run_activation(
    wf: Workflow,
    backend: RunBackend,
    worker_ctx: dict[str, Any] | None = None,
    cache: RunCache | None = None,
    trace: TraceContext | None = None,
) -> dict[str, Any]:
    """Replay ``wf`` for one activation and report how the run goes on. Returns a small
    summary (the activation job's own result). With a ``cache``, a run that waits is
    kept suspended in memory, and its next activation here goes on from there (see
    ``sticky.py``). ``trace``: the run's trace context, under which the spans of the
    waits and children it resumes from are reported."""
    held = cache.take(backend.run_id, wf.function) if cache is not None else None
    ctx: WorkflowContext | None = None
    try:
        state = await backend.begin(
            max_attempts=wf.max_attempts,
            timeout_ms=None if wf.timeout is None else round(wf.timeout * 1000),
            resume=None if held is None else held.job_id,
            positions=() if held is None else held.positions,
        )
        if held is not None:
            assert cache is not None
            parked, held = held, None
            if state.delta:
                cache.hits += 1
                rebind(parked.ctx._replay.log_scope)
                ctx = parked.ctx
                if worker_ctx is not None:
                    # The code kept in memory goes on in this activation: its ctx.worker
                    # (and ctx.traceparent) are this activation's job's from here on.
                    ctx._worker = worker_ctx
                return await _resume(parked, state, backend, cache)
            # The run went on elsewhere (or its history was rewritten): replay in full.
            cache.misses += 1
            cache.let_go(parked)
        ctx = WorkflowContext.for_activation(state, backend, worker_ctx)
        # Its log lines go to the run; none again while it replays its history. (The
        # code's task, made in _start, copies this scope; a run kept in memory goes on
        # under its first activation's scope: its lines still reach the run's log.)
        ctx._replay.log_scope = workflow_scope(state.run_id, lambda: ctx.replaying)
        return await _start(wf, ctx, state, cache)
    except Abandon as exc:
        log.info("activation of %s abandoned: %s", wf.function, exc)
        return {"abandoned": str(exc)}
    finally:
        if held is not None:  # begin was refused, or failed: the kept state is no good
            assert cache is not None
            cache.let_go(held)
        if tracing.TRACER is not None and trace is not None and ctx is not None:
            report_resumed(ctx.run_id, ctx._replay.resumed_from, trace)
            ctx._replay.resumed_from = []


def report_resumed(
    run_id: str, resumed: list[tuple[int, dict[str, Any]]], trace: TraceContext
) -> None:
    """The spans of the waits and children an activation resumed from, rebuilt from
    their records: each began when it was first recorded (``since``) and ended when it
    was resolved (``at``). Reported once, by the activation that replays past them
    first; a child's call span takes the id its child already carries as parent."""
    for pos, rec in resumed:
        kind, name = str(rec.get("kind")), str(rec.get("name"))
        end = rec.get("at")
        if not isinstance(end, int | float):
            continue
        since = rec.get("since", end)
        start = since if isinstance(since, int | float) else end
        attributes: dict[str, Any] = {
            "tether.run.id": run_id,
            "tether.step.position": pos,
            "tether.step.name": name,
        }
        child = rec.get("job") or rec.get("run")
        span_id = None
        if kind in ("call", "child"):
            if child:
                attributes["tether.child.id"] = str(child)
                span_id = tracing.call_span_id(str(child))
            span_name = f"tether.{kind} {name}"
        else:
            attributes["tether.wait.kind"] = kind
            span_name = f"tether.wait {kind}"
        error = None
        if rec.get("status") != "completed":
            info = rec.get("error")
            message = info.get("message") if isinstance(info, dict) else None
            error = str(message or rec.get("job_status") or rec.get("status"))
        tracing.record(span_name, trace, attributes, start, end, span_id=span_id, error=error)


@functools.cache
def _binder(wf: Workflow) -> InputBinder:
    return InputBinder(wf.fn, wf.name)


# What the workflow's code did: returned a value, or raised (Suspend, ContinueAsNew
# and Abandon included: they end the code too).
_Outcome = tuple[bool, Any]


async def _body(wf: Workflow, ctx: WorkflowContext, args: Any, kwargs: Any) -> _Outcome:
    try:
        return True, await wf.fn(ctx, *args, **kwargs)
    except (Exception, Suspend, ContinueAsNew, Abandon) as exc:  # Evicted is an Abandon
        return False, exc


async def _start(
    wf: Workflow, ctx: WorkflowContext, state: ActivationState, cache: RunCache | None
) -> dict[str, Any]:
    replay = ctx._replay  # the runner's side of the context
    try:
        args, kwargs = _binder(wf).bind(state.input)
    except Exception as exc:  # a run whose input does not fit fails, never retried
        await replay.backend.fail(
            _error(exc), resume=None, retryable=False, logs=replay.drain_logs()
        )
        return {"run": ctx.run_id, "command": "failed"}
    replay.outbox = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_body(wf, ctx, args, kwargs), name=f"tether-run-{ctx.run_id}")
    return await _drive(wf.function, ctx, task, cache)


async def _resume(
    parked: Parked, state: ActivationState, backend: RunBackend, cache: RunCache
) -> dict[str, Any]:
    """Go on with a kept run: the awaited records arrived with ``begin``."""
    ctx = parked.ctx
    replay = ctx._replay
    replay.backend = backend
    replay.steps.update(state.steps)
    replay.max_payload_bytes = state.max_payload_bytes
    replay.outbox = asyncio.get_running_loop().create_future()
    assert replay.resumed is not None
    replay.resumed.set_result(None)
    return await _drive(parked.function, ctx, parked.task, cache)


async def _drive(
    function: str, ctx: WorkflowContext, task: asyncio.Task[_Outcome], cache: RunCache | None
) -> dict[str, Any]:
    """Run the code until it ends or waits, and report which."""
    replay = ctx._replay
    outbox = replay.outbox
    assert outbox is not None
    try:
        either: set[asyncio.Future[Any]] = {task, outbox}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            request = outbox.result()
            positions = wait_positions(request.wait)
            if cache is None or not cache.keeps(positions):
                # Unwind now, as if the wait had raised: the code's finally blocks run
                # (and their log lines go out) before the run is suspended.
                assert replay.resumed is not None
                replay.resumed.set_exception(request)
                await task
    except BaseException:
        # The activation was cancelled (the worker stops, the job was cancelled): the
        # code must not go on.
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        raise
    if not task.done():
        # Kept: from here on the code may belong to the run's next activation, so a
        # failed report must not cancel it (_park lets go of it only if still cached).
        assert cache is not None
        return await _park(function, ctx, task, request, positions, cache)
    replay.outbox = None
    returned, value = task.result()
    if returned:
        return await _report_return(ctx, value)
    return await _report_raise(ctx, value)


async def _park(
    function: str,
    ctx: WorkflowContext,
    task: asyncio.Task[_Outcome],
    request: Suspend,
    positions: tuple[int, ...],
    cache: RunCache,
) -> dict[str, Any]:
    replay = ctx._replay
    parked = Parked(ctx.run_id, function, replay.backend.job_id, positions, task, ctx)
    # Kept before the report: the run's next activation may reach this machine before
    # the report's answer does (a wait already satisfied queues it at once), and must
    # find the run here.
    cache.put(parked)
    try:
        status = await replay.backend.suspend(request.wait, request.children, replay.drain_logs())
    except BaseException:
        # Refused (the run ended, or moved on) or undeliverable: let go of it, unless
        # the next activation took it already (then the report did land: it is theirs).
        cache.discard(parked)
        raise
    return {"run": ctx.run_id, "command": "suspended", "kind": request.wait.kind, "status": status}


async def _report_return(ctx: WorkflowContext, result: Any) -> dict[str, Any]:
    replay = ctx._replay
    if replay.fatal is not None:
        # The code caught the NonDeterminismError: the run fails all the same.
        await replay.backend.fail(
            _error(replay.fatal), resume=None, retryable=False, logs=replay.drain_logs()
        )
        return {"run": ctx.run_id, "command": "failed"}
    await replay.backend.complete(result, replay.drain_logs())
    return {"run": ctx.run_id, "command": "completed"}


async def _report_raise(ctx: WorkflowContext, exc: BaseException) -> dict[str, Any]:
    replay = ctx._replay
    if isinstance(exc, Abandon):  # Evicted too
        raise exc
    if isinstance(exc, ContinueAsNew):
        status = await replay.backend.continue_as_new(exc.input, replay.drain_logs())
        return {"run": ctx.run_id, "command": "continued", "status": status}
    if isinstance(exc, Suspend):
        status = await replay.backend.suspend(exc.wait, exc.children, replay.drain_logs())
        return {"run": ctx.run_id, "command": "suspended", "kind": exc.wait.kind, "status": status}
    fatal = replay.fatal
    cause: BaseException = fatal if fatal is not None else exc
    retryable = fatal is None and getattr(exc, "retryable", True) is not False
    status = await replay.backend.fail(
        _error(cause),
        resume=None if fatal else resume_point(exc),
        retryable=retryable,
        logs=replay.drain_logs(),
    )
    return {"run": ctx.run_id, "command": "failed", "status": status}


# -- registration in a worker ------------------------------------------------------------


BackendFactory = Callable[[LeasedJob], RunBackend]


class WorkflowHandler:
    """The registry handler of one workflow version."""

    def __init__(
        self, wf: Workflow, backend: BackendFactory, cache: RunCache | None = None
    ) -> None:
        self.wf = wf
        self.backend = backend
        self.cache = cache

    async def __call__(self, job: LeasedJob, ctx: dict[str, Any]) -> dict[str, Any]:
        if not job.parent:
            raise ConfigurationError(f"job {job.id} of {job.function} belongs to no run")
        return await run_activation(
            self.wf, self.backend(job), ctx, self.cache, job_trace(job.id, job.trace)
        )


def workflow_spec(wf: Workflow) -> FunctionSpec:
    # No per-activation timeout: a workflow's limit is its run timeout, kept on the run.
    return FunctionSpec(name=wf.function, kind="workflow", max_attempts=None)


def add_workflows(
    registry: Registry,
    workflows: Sequence[Any],
    backend: BackendFactory,
    cache: RunCache | None = None,
) -> None:
    seen: set[str] = set()
    for wf in workflows:
        if not isinstance(wf, Workflow):
            raise ConfigurationError(
                f"WorkerSettings.workflows takes @workflow functions, not {wf!r}"
            )
        if wf.function in seen:
            raise ConfigurationError(f"workflow {wf.name} v{wf.version} is listed twice")
        seen.add(wf.function)
        registry.add_handler(wf.function, WorkflowHandler(wf, backend, cache), workflow_spec(wf))


def register_workflows(registry: Registry, workflows: Sequence[Any], worker: Any) -> None:
    """The worker's hook: serve each workflow version's activations. Their reports go
    over the worker's own keep-alive HTTP session (the fast HTTP/1.1 backend for
    http:// APIs), opened before the first activation can arrive; runs that wait are
    kept in the worker's ``run_cache`` (sticky replay)."""
    from tether.workers.http_backend import HttpBackend, session_poster

    def backend(job: LeasedJob) -> RunBackend:
        if worker.session is None:
            raise ConfigurationError("the worker's HTTP session is not open")
        return HttpBackend(session_poster(worker.session), worker.machine_id, job)

    add_workflows(registry, workflows, backend, worker.run_cache)
