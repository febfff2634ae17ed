"""``/v1/runs``: durable workflow runs, for applications and for machines.

Applications start runs, watch them (``?wait=S`` answers as soon as the run finishes),
decide approvals, send signals, cancel and retry. Machines running an activation report
through ``/v1/machines/{id}/runs/{run}/...``: ``begin``, one ``steps`` call per step,
and one closing command (``complete``, ``fail`` or ``suspend``); each is one Lua
transition that checks the activation's fencing token.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import Parameter
from litestar.types import Scope
from pydantic import BaseModel, Field

from tether import tracing
from tether.api.auth import SCOPE_SERVICES, principal_of
from tether.api.error_handlers import also_ok, change_error_responses, error_responses
from tether.api.listing import (
    CreatedAfterParam,
    CreatedBeforeParam,
    CursorParam,
    LimitParam,
    TagParam,
    TimelineLimitParam,
    listing,
)
from tether.api.notify import Notifier
from tether.api.params import ApprovalKey, MachineId, RunId, SignalName
from tether.api.polling import release_jobs, wait_until_finished
from tether.api.registry import FunctionRegistry, child_terms, workflow_versions
from tether.api.responses import JsonResponse
from tether.api.services import Services
from tether.api.trace_headers import TraceHeaders, TraceParentHeader, TraceStateHeader
from tether.errors import InvalidRequest, UnknownFunction, ValidationFailed
from tether.limits import (
    ID_REGEX,
    ID_REGEX_WITH_LENGTH,
    ID_RULE,
    MAX_ATTEMPTS,
    MAX_DELAY,
    MAX_ID_LENGTH,
    MAX_LOG_LINES,
    MAX_STEP_POSITION,
    MAX_STICKY_POSITIONS,
    MAX_TIMEOUT,
)
from tether.protocol import (
    MAX_GET_WAIT,
    RUN_TERMINAL,
    ApprovalDecision,
    Body,
    ChildSpec,
    ErrorInfo,
    IdStr,
    Resume,
    RunCreate,
    RunList,
    RunOut,
    RunStatus,
    SignalSend,
    Timeline,
    TimelineEvent,
    activation_function,
    job_trace_id,
    ms_to_datetime,
    wait_from_wire,
)
from tether.queue.engine import HandOff, QueueEngine
from tether.queue.keys import SCHEDULE_ROOT
from tether.queue.runs import RunEngine, RunRecord, Started, served_versions

SCHEDULE_ID_PREFIX = SCHEDULE_ROOT + ":"
SERVED_TTL = 0.5  # seconds the list of served versions is reused between requests


def provide_runs(scope: Scope) -> RunEngine:
    runs: RunEngine = scope[SCOPE_SERVICES].runs  # type: ignore[literal-required]
    return runs


class _Served:
    """Which workflow versions live machines serve, cached for a moment per process."""

    def __init__(self) -> None:
        self.at = 0.0
        self.value: dict[str, set[int]] = {}
        self.lock = asyncio.Lock()

    async def get(self, engine: QueueEngine) -> dict[str, set[int]]:
        async with self.lock:
            if time.monotonic() - self.at > SERVED_TTL:
                self.value = await served_versions(engine)
                self.at = time.monotonic()
            return self.value


def provide_served(state: State, scope: Scope) -> _Served:
    """One cache per app (apps of different deployments may share a process in tests)
    and namespace."""
    namespace: str = scope[SCOPE_SERVICES].namespace  # type: ignore[literal-required]
    by_namespace: dict[str, _Served] | None = state.get("served_versions")
    if by_namespace is None:
        by_namespace = state.served_versions = {}
    served = by_namespace.get(namespace)
    if served is None:
        served = by_namespace[namespace] = _Served()
    return served


async def answer(record: RunRecord, served: _Served, engine: QueueEngine) -> RunOut:
    """The run as the API shows it. Which versions live machines serve (a cache that
    costs Redis round trips per machine to refresh) is looked up only for a queued run
    with a pinned version: the one case the answer depends on it."""
    if record.status == RunStatus.QUEUED and record.version is not None:
        return run_out(record, await served.get(engine))
    return run_out(record)


def run_out(record: RunRecord, served: dict[str, set[int]] | None = None) -> RunOut:
    waiting_on = dict(record.waiting_on) if record.waiting_on else None
    if waiting_on is not None and record.wake_at is not None:
        until = ms_to_datetime(record.wake_at)
        waiting_on["until"] = until.isoformat() if until else None
    if (
        served is not None
        and record.status == RunStatus.QUEUED
        and record.version is not None
        and record.version not in served.get(record.workflow, set())
    ):
        # Not an error: the run goes on as soon as a machine serving its version appears.
        waiting_on = {
            "kind": "version",
            "workflow": record.workflow,
            "version": record.version,
            "message": f"no live machine serves {record.workflow} v{record.version}",
        }
    buffered: dict[str, list[str]] = {}
    if record.held_approvals:
        buffered["approvals"] = list(record.held_approvals)
    if record.held_signals:
        buffered["signals"] = list(record.held_signals)
    return RunOut(
        buffered=buffered or None,
        tags=record.tags,
        parent=record.parent,
        continued=record.continued,
        id=record.id,
        workflow=record.workflow,
        version=record.version,
        status=record.status.value,
        waiting_on=waiting_on,
        input=record.input,
        result=record.result,
        error=record.error,
        created_at=ms_to_datetime(record.created_at),
        updated_at=ms_to_datetime(record.updated_at),
        finished_at=ms_to_datetime(record.finished_at),
        trace_id=job_trace_id(record.id, record.trace),
    )


async def wait_for_run(runs: RunEngine, notifier: Notifier, run_id: str, wait: float) -> RunRecord:
    """The run as soon as it is finished, or as it is when ``wait`` elapses (a finishing
    run publishes ``r:<id>``; the notifier's re-check reads the run's status)."""
    return await wait_until_finished(
        notifier,
        run_id,
        lambda: runs.get(run_id),
        lambda r: r.status in RUN_TERMINAL,
        wait,
        run=True,
    )


async def _start_and_hand_off(
    data: RunCreate,
    run_id: str,
    version: int | None,
    runs: RunEngine,
    services: Services,
    trace: str | None = None,
) -> Started:
    """Start the run; if a machine serving its version has a long poll parked in this
    process, its first activation is claimed for that poll in the same round trip (as
    ``POST /v1/jobs`` does for jobs): no notification, no claim of its own. ``trace``:
    its compact trace context (None: the engine makes one up)."""
    function = activation_function(data.workflow, version) if version is not None else None
    waiter = services.notifier.take_idle(function) if function is not None else None
    if waiter is None or function is None:
        return await runs.start(
            data.workflow, data.input, run_id=run_id, version=version, tags=data.tags, trace=trace
        )
    hand_off = HandOff(waiter.machine, waiter.functions, waiter.max_jobs, function)
    try:
        started, claimed = await runs.start_and_claim(
            services.engine,
            hand_off,
            data.workflow,
            data.input,
            run_id=run_id,
            version=version,
            tags=data.tags,
            trace=trace,
        )
    except BaseException:
        waiter.hand([])
        raise
    if waiter.hand(claimed):
        services.metrics.jobs_handed_off += len(claimed)
    else:
        await release_jobs(services.engine, claimed)
    return started


class RunsController(Controller):
    path = "/v1/runs"
    tags = ["runs"]
    dependencies = {
        "runs": Provide(provide_runs, sync_to_thread=False),
        "served": Provide(provide_served, sync_to_thread=False),
    }

    @post(
        "/",
        operation_id="startRun",
        responses=change_error_responses(404, 409)
        | also_ok(RunOut, "The run its id already names"),
        summary=(
            "Start a run (201), or get the run its id already names (200); with ?wait=S, "
            "answers as soon as the run finishes or S seconds pass"
        ),
    )
    async def start_run(
        self,
        data: RunCreate,
        served: _Served,
        services: Services,
        wait: Annotated[
            float,
            Parameter(
                ge=0,
                le=MAX_GET_WAIT,
                description=(
                    f"seconds to wait for the run to finish (0-{MAX_GET_WAIT:g}): start "
                    "and result in one round trip"
                ),
            ),
        ] = 0.0,
        traceparent: TraceParentHeader = None,
        tracestate: TraceStateHeader = None,
    ) -> JsonResponse[RunOut]:
        # One dependency (Services) beside the served cache: Litestar resolves several
        # concurrently, which costs more than this handler on its hot path.
        runs, engine, registry = services.runs, services.engine, services.registry
        if data.id is not None and data.id.startswith(SCHEDULE_ID_PREFIX):
            # Those ids are the ticks of schedules: a run taking one first would make
            # that tick start nothing (docs/schedules.md).
            raise ValidationFailed(
                f"run ids starting {SCHEDULE_ID_PREFIX!r} are reserved for schedules",
                details={"field": "id"},
            )
        serving = await served.get(engine)
        version = data.version
        if version is None:
            versions = serving.get(data.workflow)
            if versions:
                version = max(versions)
            elif not any(f.name.startswith(f"wf:{data.workflow}@") for f in await registry.all()):
                raise UnknownFunction(
                    f"no machine has registered workflow {data.workflow!r}: start a worker "
                    "that serves it, then start the run again",
                    details={"workflow": data.workflow},
                )
        elif version not in serving.get(data.workflow, ()) and (
            await registry.get(activation_function(data.workflow, version)) is None
        ):
            # A version that is registered but not served now waits for a machine; one
            # that no machine ever registered is a typo (or a deploy that never happened).
            raise UnknownFunction(
                f"no machine has registered workflow {data.workflow!r} version {version}: "
                "start a worker that serves it, or leave out the version",
                details={"workflow": data.workflow, "version": version},
            )
        # The id is drawn here, so a wait listens for the run's end before it exists.
        run_id = data.id or uuid.uuid4().hex
        created = False

        parent = TraceHeaders(traceparent, tracestate).parsed

        async def submit() -> RunRecord:
            nonlocal created
            if tracing.TRACER is None:
                # None: the engine makes a trace up (a run always keeps one).
                trace = parent.to_field() if parent is not None else None
                started = await _start_and_hand_off(data, run_id, version, runs, services, trace)
            else:
                with tracing.enqueue_span(data.workflow, 1, run_id, parent, run=True) as trace:
                    started = await _start_and_hand_off(
                        data, run_id, version, runs, services, trace
                    )
            created = started.created
            # The start answers with the record: no read of its own.
            return started.record or await runs.get(started.id)

        record = await wait_until_finished(
            services.notifier,
            run_id,
            lambda: runs.get(run_id),
            lambda r: r.status in RUN_TERMINAL,
            wait,
            first=submit,
            run=True,
        )
        return JsonResponse(run_out(record, serving), status_code=201 if created else 200)

    @get(
        "/{run_id:str}",
        operation_id="getRun",
        responses=error_responses(404),
        summary="A run; with ?wait=S, answers as soon as it finishes or S seconds pass",
    )
    async def get_run(
        self,
        run_id: RunId,
        runs: RunEngine,
        engine: QueueEngine,
        served: _Served,
        notifier: Notifier,
        wait: Annotated[
            float,
            Parameter(
                ge=0,
                le=MAX_GET_WAIT,
                description=f"seconds to wait for the run to finish (0-{MAX_GET_WAIT:g})",
            ),
        ] = 0.0,
    ) -> RunOut:
        record = await wait_for_run(runs, notifier, run_id, wait)
        return await answer(record, served, engine)

    @get(
        "/",
        operation_id="listRuns",
        responses=error_responses(),
        summary="Runs, newest first, a page at a time (follow next_cursor)",
    )
    async def list_runs(
        self,
        runs: RunEngine,
        engine: QueueEngine,
        served: _Served,
        status: Annotated[RunStatus | None, Parameter(description="only this status")] = None,
        workflow: Annotated[
            str | None, Parameter(description="only runs of this workflow", max_length=200)
        ] = None,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
        created_after: CreatedAfterParam = None,
        created_before: CreatedBeforeParam = None,
        tag: TagParam = None,
        parent: Annotated[
            str | None,
            Parameter(
                description="only the child runs of this run (started with ctx.child)",
                pattern=ID_REGEX,
                max_length=MAX_ID_LENGTH,
            ),
        ] = None,
    ) -> RunList:
        query = listing(cursor, created_after, created_before, tag)
        records, after = await runs.list_runs(
            status=status,
            workflow=workflow,
            parent=parent,
            tags=query.tags,
            limit=limit,
            cursor=query.cursor,
            created_after_ms=query.created_after_ms,
            created_before_ms=query.created_before_ms,
        )
        # Which versions are served matters for queued runs only (their waiting_on).
        queued = any(r.status == RunStatus.QUEUED for r in records)
        serving = await served.get(engine) if queued else None
        return RunList(
            runs=[run_out(r, serving) for r in records],
            next_cursor=after.encode() if after else None,
        )

    @get(
        "/{run_id:str}/timeline",
        operation_id="getRunTimeline",
        responses=error_responses(404),
        summary="Every transition of a run and its jobs, oldest first",
    )
    async def timeline(
        self,
        run_id: RunId,
        runs: RunEngine,
        limit: TimelineLimitParam = 1000,
    ) -> Timeline:
        await runs.get(run_id)  # 404 for an unknown run
        events = []
        for entry in await runs.timeline(run_id, limit):
            fields = {k: v for k, v in entry.items() if k not in ("id", "event", "at")}
            at = ms_to_datetime(int(entry.get("at") or entry["id"].split("-")[0]))
            assert at is not None
            events.append(
                TimelineEvent(id=entry["id"], event=entry.get("event", ""), at=at, fields=fields)
            )
        return Timeline(events=events)

    @post(
        "/{run_id:str}/approvals/{key:str}",
        operation_id="decideApproval",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Decide an approval (once per key); wakes the run if it waits on it",
        description="The answer is the run, with `delivery`: `woken` (the run waited on "
        "this key and goes on now) or `buffered` (kept until the run waits on it; the key "
        "is listed in the run's `buffered.approvals` meanwhile).",
    )
    async def approve(
        self,
        run_id: RunId,
        key: ApprovalKey,
        data: ApprovalDecision,
        request: Request[Any, Any, Any],
        runs: RunEngine,
        engine: QueueEngine,
        served: _Served,
    ) -> RunOut:
        # The decider is the key that made the request, never a name from the body.
        by = principal_of(request).name
        decided = await runs.decide(
            run_id, key, approved=data.approved, by=by, comment=data.comment, data=data.data
        )
        out = await answer(await runs.get(run_id), served, engine)
        out.delivery = "woken" if decided["delivered"] else "buffered"
        return out

    @post(
        "/{run_id:str}/signals/{name:str}",
        operation_id="sendSignal",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Send a signal; buffered until the run waits for it",
        description="The answer is the run, with `delivery`: `woken` (the run waited for "
        "this signal and goes on now) or `buffered` (kept, in arrival order, until the run "
        "waits for it; listed in the run's `buffered.signals` meanwhile).",
    )
    async def signal(
        self,
        run_id: RunId,
        name: SignalName,
        data: SignalSend,
        request: Request[Any, Any, Any],
        runs: RunEngine,
        engine: QueueEngine,
        served: _Served,
    ) -> RunOut:
        delivered = await runs.signal(run_id, name, data.payload, by=principal_of(request).name)
        out = await answer(await runs.get(run_id), served, engine)
        out.delivery = "woken" if delivered == "woken" else "buffered"
        return out

    @post(
        "/{run_id:str}/cancel",
        operation_id="cancelRun",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Cancel a run and every child job it started",
    )
    async def cancel(
        self, run_id: RunId, runs: RunEngine, engine: QueueEngine, served: _Served
    ) -> RunOut:
        await runs.cancel(run_id)
        return await answer(await runs.get(run_id), served, engine)

    @post(
        "/{run_id:str}/retry",
        operation_id="retryRun",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Resume a failed run where its unhandled failure happened",
    )
    async def retry(
        self, run_id: RunId, runs: RunEngine, engine: QueueEngine, served: _Served
    ) -> RunOut:
        await runs.retry(run_id)
        return await answer(await runs.get(run_id), served, engine)


# -- the machine side ------------------------------------------------------------------


class ActivationRef(Body):
    job: IdStr
    token: str = Field(min_length=1, max_length=40)


# Integers are bounded: Redis and the JSON encoder take 64 bits at most.
_TIMEOUT_MS = round(MAX_TIMEOUT * 1000)
_SLEEP_MS = round(MAX_DELAY * 1000)
Position = Annotated[int, Field(ge=0, le=MAX_STEP_POSITION)]
Logs = list[dict[str, Any]]


class BeginBody(ActivationRef):
    max_attempts: int = Field(default=1, ge=1, le=MAX_ATTEMPTS)
    timeout_ms: int | None = Field(default=None, gt=0, le=_TIMEOUT_MS)
    # Sticky replay: the activation after which this machine kept the run in memory,
    # and the positions it lacks (what it waits on); see begin_activation.lua.
    resume: IdStr | None = None
    positions: list[Position] = Field(default_factory=list, max_length=MAX_STICKY_POSITIONS)


class StepBody(ActivationRef):
    position: Position
    record: dict[str, Any]
    logs: Logs = Field(default_factory=list, max_length=MAX_LOG_LINES)


class CompleteBody(ActivationRef):
    result: Any = None
    logs: Logs = Field(default_factory=list, max_length=MAX_LOG_LINES)


class FailBody(ActivationRef):
    error: ErrorInfo
    # Where a retry resumes (see Resume): positions to run again, and the last one kept.
    reopen: list[Position] = Field(default_factory=list, max_length=MAX_LOG_LINES)
    resume_after: Position | None = None
    failed_position: Position | None = None  # older workers: one position
    retryable: bool = True
    logs: Logs = Field(default_factory=list, max_length=MAX_LOG_LINES)


class ContinueBody(ActivationRef):
    input: Any = None
    logs: Logs = Field(default_factory=list, max_length=MAX_LOG_LINES)


class WaitBody(Body):
    kind: Literal["children", "sleep", "approval", "signal"]
    position: Position | None = None
    name: str = Field(default="", max_length=MAX_ID_LENGTH)
    ms: int | None = Field(default=None, ge=0, le=_SLEEP_MS)
    positions: list[Position] = Field(default_factory=list, max_length=MAX_LOG_LINES)
    info: dict[str, Any] = Field(default_factory=dict)


class ChildBody(Body):
    position: Position
    function: IdStr  # or the workflow's name, for a child run (workflow: true)
    input: Any = None
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    # None: the default; 0 would mean "no timeout", which no caller asked for.
    timeout_ms: int | None = Field(default=None, ge=1, le=_TIMEOUT_MS)
    workflow: bool = False
    version: int | None = Field(default=None, ge=1)


class SuspendBody(ActivationRef):
    wait: WaitBody
    children: list[ChildBody] = Field(default_factory=list, max_length=MAX_LOG_LINES)
    logs: Logs = Field(default_factory=list, max_length=MAX_LOG_LINES)


_ID_RE = re.compile(ID_REGEX_WITH_LENGTH)


def _bad(field: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {why}", details={"field": field})


def parse_step(raw: bytes) -> StepBody:
    """``StepBody`` from raw JSON without pydantic's per-request cost: a step is the one
    request a workflow waits on, so its parsing is written out (same rules, same errors)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    unknown = set(body) - {"job", "token", "position", "record", "logs"}
    if unknown:
        raise _bad(sorted(unknown)[0], "extra inputs are not permitted")
    job, token, position = body.get("job"), body.get("token"), body.get("position")
    record, logs = body.get("record"), body.get("logs", [])
    if not isinstance(job, str) or not _ID_RE.match(job):
        raise _bad("job", f"must be {ID_RULE}")
    if not isinstance(token, str) or not 1 <= len(token) <= 40:
        raise _bad("token", "must be a string of 1-40 characters")
    if (
        not isinstance(position, int)
        or isinstance(position, bool)
        or not 0 <= position <= MAX_STEP_POSITION
    ):
        raise _bad("position", f"must be an integer from 0 to {MAX_STEP_POSITION}")
    if not isinstance(record, dict):
        raise _bad("record", "must be an object")
    if not isinstance(logs, list) or not all(isinstance(line, dict) for line in logs):
        raise _bad("logs", "must be a list of objects")
    if len(logs) > MAX_LOG_LINES:
        raise _bad("logs", f"must hold at most {MAX_LOG_LINES} lines")
    return StepBody.model_construct(
        job=job, token=token, position=position, record=record, logs=logs
    )


@dataclass
class StepOperation(Operation):
    """The OpenAPI operation of ``recordStep``: its body is parsed by hand
    (``parse_step``), so Litestar cannot see it; this declares it, rule for rule."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={"application/json": OpenAPIMediaType(schema=_STEP_SCHEMA)},
        )


_STEP_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["job", "token", "position", "record"],
    additional_properties=False,
    properties={
        "job": Schema(
            type=OpenAPIType.STRING, min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_REGEX
        ),
        "token": Schema(type=OpenAPIType.STRING, min_length=1, max_length=40),
        "position": Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=MAX_STEP_POSITION),
        "record": Schema(type=OpenAPIType.OBJECT),
        "logs": Schema(
            type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT), max_items=MAX_LOG_LINES
        ),
    },
)


class ActivationOut(BaseModel):
    run: str
    workflow: str
    version: int
    input: Any
    steps: dict[str, Any]
    failures: int
    retries: int
    log_mark: int = -1  # number of the last log line the run has (ctx.log skips up to it)
    max_payload_bytes: int | None = None  # the limit on one step's result
    delta: bool = False  # steps holds only the positions asked for (sticky replay)


class CommandOut(BaseModel):
    status: str


class MachineRunsController(Controller):
    path = "/v1/machines/{machine_id:str}/runs/{run_id:str}"
    tags = ["machines"]
    dependencies = {
        "runs": Provide(provide_runs, sync_to_thread=False),
        "served": Provide(provide_served, sync_to_thread=False),
    }

    @post(
        "/begin",
        operation_id="beginActivation",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Start replaying a run: its input and every recorded step",
    )
    async def begin(
        self, machine_id: MachineId, run_id: RunId, data: BeginBody, runs: RunEngine
    ) -> ActivationOut:
        state = await runs.begin(
            run_id,
            data.job,
            data.token,
            machine=machine_id,
            max_attempts=data.max_attempts,
            timeout_ms=data.timeout_ms,
            resume=data.resume,
            positions=data.positions,
        )
        return ActivationOut(
            run=state.run_id,
            workflow=state.workflow,
            version=state.version,
            input=state.input,
            steps={str(k): v for k, v in state.steps.items()},
            failures=state.failures,
            retries=state.retries,
            log_mark=state.log_mark,
            max_payload_bytes=state.max_payload_bytes,
            delta=state.delta,
        )

    @post(
        "/steps",
        operation_id="recordStep",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Record one step durably (checks the activation's token)",
        description="Body: job, token, position, record, logs; parsed by hand, without "
        "pydantic, because a workflow waits on this request.",
        operation_class=StepOperation,
    )
    async def record_step(
        self,
        machine_id: MachineId,
        run_id: RunId,
        request: Request[Any, Any, Any],
        runs: RunEngine,
    ) -> Response[bytes]:
        data = parse_step(await request.body())
        status = await runs.record_step(
            run_id,
            data.job,
            data.token,
            data.position,
            data.record,
            data.logs,
            machine=machine_id,
        )
        return Response(
            b'{"status":"%s"}' % status.encode(), media_type=MediaType.JSON, status_code=200
        )

    @post(
        "/complete",
        operation_id="completeRun",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="The workflow returned: commit the run's result",
    )
    async def complete(
        self, machine_id: MachineId, run_id: RunId, data: CompleteBody, runs: RunEngine
    ) -> CommandOut:
        status = await runs.complete(
            run_id, data.job, data.token, data.result, data.logs, machine=machine_id
        )
        return CommandOut(status=status)

    @post(
        "/fail",
        operation_id="failRun",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="The workflow raised: retry it from its resume point, or fail the run",
    )
    async def fail(
        self, machine_id: MachineId, run_id: RunId, data: FailBody, runs: RunEngine
    ) -> CommandOut:
        resume = None
        if data.resume_after is not None:
            resume = Resume(tuple(data.reopen), data.resume_after)
        elif data.failed_position is not None:
            resume = Resume((data.failed_position,), data.failed_position)
        status = await runs.fail(
            run_id,
            data.job,
            data.token,
            data.error,
            machine=machine_id,
            resume=resume,
            retryable=data.retryable,
            logs=data.logs,
        )
        return CommandOut(status=status)

    @post(
        "/continue",
        operation_id="continueRunAsNew",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="The workflow continues as new: start it over with a new input and history",
    )
    async def continue_as_new(
        self, machine_id: MachineId, run_id: RunId, data: ContinueBody, runs: RunEngine
    ) -> CommandOut:
        status = await runs.continue_as_new(
            run_id,
            data.job,
            data.token,
            data.input,
            data.logs,
            machine=machine_id,
        )
        return CommandOut(status=status)

    @post(
        "/suspend",
        operation_id="suspendRun",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="The workflow waits: start its children, record the wait, free the slot",
    )
    async def suspend(
        self,
        machine_id: MachineId,
        run_id: RunId,
        data: SuspendBody,
        runs: RunEngine,
        registry: FunctionRegistry,
        engine: QueueEngine,
        served: _Served,
    ) -> CommandOut:
        w = data.wait
        try:
            wait = wait_from_wire(w.kind, w.position, w.name, w.ms, w.positions, w.info)
        except ValueError as exc:
            raise ValidationFailed(f"wait: {exc}", details={"field": "wait"}) from exc
        asked = [
            ChildSpec(
                c.position,
                c.function,
                c.input,
                c.max_attempts,
                c.timeout_ms,
                c.workflow,
                c.version,
            )
            for c in data.children
        ]
        refused: dict[int, ErrorInfo] = {}
        if asked:
            # Cached by the registry: usually no Redis round trip.
            specs = await registry.get_many([c.function for c in asked if not c.workflow])
            versions = {}
            if any(c.workflow for c in asked):  # child runs: rare, so a registry read is fine
                versions = await workflow_versions(registry, await served.get(engine))
            asked, refused = child_terms(asked, specs, versions)
        status = await runs.suspend(
            run_id,
            data.job,
            data.token,
            wait,
            asked,
            data.logs,
            machine=machine_id,
            refused=refused,
        )
        return CommandOut(status=status)


RUN_HANDLERS = [RunsController, MachineRunsController]
