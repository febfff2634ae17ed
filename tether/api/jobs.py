"""``/v1/jobs``: what applications call to submit, watch, list and cancel jobs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import Parameter

from tether import tracing
from tether.api.error_handlers import also_ok, change_error_responses, error_responses
from tether.api.input_check import check_input
from tether.api.listing import (
    CreatedAfterParam,
    CreatedBeforeParam,
    CursorParam,
    LimitParam,
    TagParam,
    TimelineLimitParam,
    listing,
)
from tether.api.notify import FunctionWaiter
from tether.api.params import JobId
from tether.api.polling import release_jobs, wait_for_job, wait_until_finished
from tether.api.registry import RegisteredFunction
from tether.api.responses import JsonResponse, shaped_as
from tether.api.services import Services
from tether.api.trace_headers import TraceHeaders, TraceParentHeader, TraceStateHeader
from tether.errors import UnknownFunction
from tether.protocol import (
    MAX_GET_WAIT,
    TERMINAL,
    JobBatchCreate,
    JobBatchOut,
    JobCreate,
    JobList,
    JobOut,
    JobStatus,
    Timeline,
    TimelineEvent,
    job_trace_id,
    ms_to_datetime,
)
from tether.queue.engine import EnqueueRequest, HandOff, QueueEngine
from tether.queue.records import Enqueued, JobRecord

Job = dict[str, Any]  # a job laid out as JobOut


def _unknown(names: list[str]) -> UnknownFunction:
    listed = ", ".join(repr(n) for n in names)
    return UnknownFunction(
        f"no machine has registered function {listed}: start a worker that serves it "
        "(it registers its functions with its first heartbeat), then submit again",
        details={"functions": names} if len(names) > 1 else {"function": names[0]},
    )


def _request(
    job: JobCreate, spec: RegisteredFunction, job_id: str | None, trace: str | None
) -> EnqueueRequest:
    # A job without its own limits takes those its function registered.
    timeout = job.timeout if job.timeout is not None else spec.timeout
    return EnqueueRequest(
        function=job.function,
        job_id=job_id,
        input=job.input,
        idempotency_key=job.idempotency_key,
        delay_ms=round(job.delay * 1000),
        max_attempts=job.max_attempts or spec.max_attempts,
        timeout_ms=round(timeout * 1000) if timeout is not None else None,
        tags=job.tags,
        expires_ms=job.expires_ms(),
        trace=trace,
        priority=job.priority,
        concurrency_key=job.concurrency_key,
        concurrency_limit=job.concurrency_limit,
    )


def job_out(r: JobRecord) -> JobOut:
    return JobOut(
        id=r.id,
        function=r.function,
        status=r.status.value,
        input=r.input,
        result=r.result,
        error=r.error,
        attempt=r.attempt,
        max_attempts=r.max_attempts,
        machine=r.machine,
        parent=r.parent,
        enqueued_at=ms_to_datetime(r.enqueued_at),
        scheduled_at=ms_to_datetime(r.scheduled_at),
        started_at=ms_to_datetime(r.started_at),
        finished_at=ms_to_datetime(r.finished_at),
        cancel_requested=r.cancel_requested,
        expires_at=ms_to_datetime(r.expires_at),
        tags=r.tags,
        trace_id=job_trace_id(r.id, r.trace),
        priority=r.priority,
        concurrency_key=r.concurrency_key,
        waiting_on=r.waiting_on,
    )


def _created(e: Enqueued, req: EnqueueRequest, engine: QueueEngine, now: datetime) -> Job:
    # A new job is exactly what was asked for: no need to read it back. Its timestamps
    # are the ones stored, Redis's clock (the enqueue script answers with it).
    if e.enqueued_ms is not None:
        now = datetime.fromtimestamp(e.enqueued_ms / 1000, UTC)
    return {
        "id": e.id,
        "function": req.function,
        "status": e.status.value,
        "input": req.input,
        "result": None,
        "error": None,
        "attempt": 0,
        "max_attempts": req.max_attempts or engine.config.default_max_attempts,
        "machine": None,
        "parent": None,
        "enqueued_at": now,
        "scheduled_at": now + timedelta(milliseconds=req.delay_ms),
        "started_at": None,
        "finished_at": None,
        "cancel_requested": False,
        "expires_at": (
            now + timedelta(milliseconds=req.expires_ms) if req.expires_ms is not None else None
        ),
        "tags": req.tags,
        "trace_id": job_trace_id(e.id, req.trace),
        "priority": req.priority,
        "concurrency_key": req.concurrency_key,
        "waiting_on": None,
    }


async def _enqueue_and_hand_off(
    requests: list[EnqueueRequest], services: Services
) -> list[Enqueued]:
    """Enqueue; long polls of this process that wait for these functions get their
    jobs in the same Redis round trip (one write, one AOF fsync), instead of hearing of
    them by notification and claiming after: a job a worker waits for starts sooner."""
    notifier, engine = services.notifier, services.engine
    # One waiting poll per new ready job at most: each claims up to its max_jobs.
    idle: list[FunctionWaiter] = []
    hand_offs: list[HandOff] = []
    ready_now = (
        r.function
        for r in requests
        # A job created expired (its expiry already past) is never ready.
        if r.delay_ms <= 0 and (r.expires_ms is None or r.expires_ms > 0)
    )
    for function, count in Counter(ready_now).items():
        for _ in range(count):
            waiter = notifier.take_idle(function)
            if waiter is None:
                break
            idle.append(waiter)
            hand_offs.append(HandOff(waiter.machine, waiter.functions, waiter.max_jobs, function))
    if not idle:
        return await engine.enqueue_many(requests)
    try:
        enqueued, claimed = await engine.enqueue_and_claim(requests, hand_offs)
    except BaseException:
        for waiter in idle:
            waiter.hand([])
        raise
    for waiter, jobs in zip(idle, claimed, strict=True):
        if waiter.hand(jobs):
            services.metrics.jobs_handed_off += len(jobs)
        else:
            await release_jobs(engine, jobs)
    return enqueued


async def _enqueue(
    jobs: list[JobCreate],
    services: Services,
    job_id: str | None = None,
    *,
    batch: bool = False,
    trace: TraceHeaders | None = None,
) -> tuple[list[Enqueued], list[Job]]:
    """Enqueue ``jobs``; ``job_id`` names the job of a single-job request. Each input is
    checked against its function's schema first (422 naming the field, nothing enqueued).
    ``trace``: the request's traceparent and tracestate headers (kept with every job)."""
    parent = trace.parsed if trace is not None else None
    if tracing.TRACER is None:
        # Kept only when given: without one a job's trace follows from its id.
        stored = parent.to_field() if parent is not None else None
        return await _enqueue_jobs(jobs, services, job_id, batch, stored)
    with tracing.enqueue_span(jobs[0].function, len(jobs), job_id, parent) as stored:
        return await _enqueue_jobs(jobs, services, job_id, batch, stored)


async def _enqueue_jobs(
    jobs: list[JobCreate], services: Services, job_id: str | None, batch: bool, trace: str | None
) -> tuple[list[Enqueued], list[Job]]:
    engine = services.engine
    specs = await services.registry.get_many([j.function for j in jobs])
    unknown = [name for name, spec in specs.items() if spec is None]
    if unknown:
        raise _unknown(unknown)
    for i, j in enumerate(jobs):  # refused as a whole, like an unknown function
        validate = specs[j.function].validate  # type: ignore[union-attr]
        if validate is not None:
            check_input(validate, j.function, j.input, f"jobs.{i}.input" if batch else "input")
    requests = [_request(j, specs[j.function], job_id, trace) for j in jobs]  # type: ignore[arg-type]
    enqueued = await _enqueue_and_hand_off(requests, services)
    now = datetime.now(UTC)
    # A job created expired (its `expires` already past) is read back like an existing
    # one: its record says when it ended and why.
    out: list[Job | None] = [
        _created(e, r, engine, now) if e.created and e.status is not JobStatus.EXPIRED else None
        for e, r in zip(enqueued, requests, strict=True)
    ]
    existing = [i for i, o in enumerate(out) if o is None]
    if existing:
        # The idempotency key named an existing job: answer with that job as it is.
        records = await engine.get_jobs([enqueued[i].id for i in existing])
        for i, record in zip(existing, records, strict=True):
            e = enqueued[i]
            out[i] = job_out(
                record or JobRecord(id=e.id, function=jobs[i].function, status=e.status)
            ).model_dump()
    services.metrics.jobs_enqueued += sum(1 for e in enqueued if e.created)
    return enqueued, [o for o in out if o is not None]


class JobsController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post(
        "/",
        operation_id="createJob",
        responses=change_error_responses(404, 409)
        | also_ok(JobOut, "The job its idempotency key already names"),
        summary=(
            "Submit a job (201), or get the job its idempotency key already names (200); "
            "with ?wait=S, answers as soon as the job finishes or S seconds pass"
        ),
    )
    async def create_job(
        self,
        data: JobCreate,
        services: Services,
        traceparent: TraceParentHeader = None,
        tracestate: TraceStateHeader = None,
        wait: Annotated[
            float,
            Parameter(
                ge=0,
                le=MAX_GET_WAIT,
                description=(
                    f"seconds to wait for the job to finish (0-{MAX_GET_WAIT:g}): enqueue "
                    "and result in one round trip"
                ),
            ),
        ] = 0.0,
    ) -> JsonResponse[JobOut]:
        trace = TraceHeaders(traceparent, tracestate)
        if wait <= 0:
            enqueued, out = await _enqueue([data], services, trace=trace)
            return shaped_as(JobOut, out[0], status_code=201 if enqueued[0].created else 200)
        # The job's id is drawn here, so its end is listened for before it exists: the
        # enqueue's answer is the first read, and no news can slip in between.
        job_id = QueueEngine.job_id_for(
            EnqueueRequest(data.function, idempotency_key=data.idempotency_key)
        )
        created, found = False, job_id

        async def submit() -> Job:
            nonlocal created, found
            enqueued, out = await _enqueue([data], services, job_id, trace=trace)
            # An idempotency key given to a job enqueued with an id of its own (not over
            # HTTP) names that job: read it, though its news goes unheard until the wait ends.
            created, found = enqueued[0].created, enqueued[0].id
            return out[0]

        async def read() -> Job:
            return job_out(await services.engine.get_job(found)).model_dump()

        job = await wait_until_finished(
            services.notifier, job_id, read, lambda j: j["status"] in TERMINAL, wait, first=submit
        )
        return shaped_as(JobOut, job, status_code=201 if created else 200)

    @post(
        "/batch",
        operation_id="createJobs",
        responses=change_error_responses(404, 409)
        | also_ok(JobBatchOut, "Every job of the batch already existed"),
        summary="Submit up to 1,000 jobs in one request (201 if any was created)",
    )
    async def create_jobs(
        self,
        data: JobBatchCreate,
        services: Services,
        traceparent: TraceParentHeader = None,
        tracestate: TraceStateHeader = None,
    ) -> JsonResponse[JobBatchOut]:
        trace = TraceHeaders(traceparent, tracestate)
        enqueued, out = await _enqueue(data.jobs, services, batch=True, trace=trace)
        return shaped_as(
            JobBatchOut,
            {"jobs": out},
            status_code=201 if any(e.created for e in enqueued) else 200,
        )

    @get(
        "/{job_id:str}",
        operation_id="getJob",
        responses=error_responses(404),
        summary="A job; with ?wait=S, answers as soon as it finishes or S seconds pass",
    )
    async def get_job(
        self,
        job_id: JobId,
        services: Services,
        wait: Annotated[
            float,
            Parameter(
                ge=0,
                le=MAX_GET_WAIT,
                description=f"seconds to wait for the job to finish (0-{MAX_GET_WAIT:g})",
            ),
        ] = 0.0,
    ) -> JobOut:
        record = await wait_for_job(services.engine, services.notifier, job_id, wait)
        return job_out(record)

    @post(
        "/{job_id:str}/cancel",
        operation_id="cancelJob",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Cancel a job; a running job is told to stop at its next heartbeat",
    )
    async def cancel_job(self, job_id: JobId, services: Services) -> JobOut:
        await services.engine.cancel(job_id)
        return job_out(await services.engine.get_job(job_id))

    @get(
        "/",
        operation_id="listJobs",
        responses=error_responses(),
        summary="Jobs, newest first, a page at a time (follow next_cursor)",
    )
    async def list_jobs(
        self,
        services: Services,
        status: Annotated[JobStatus | None, Parameter(description="only this status")] = None,
        function: Annotated[
            str | None, Parameter(description="only jobs of this function", max_length=200)
        ] = None,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
        created_after: CreatedAfterParam = None,
        created_before: CreatedBeforeParam = None,
        tag: TagParam = None,
    ) -> JobList:
        query = listing(cursor, created_after, created_before, tag)
        records, after = await services.engine.list_jobs(
            status=status,
            function=function,
            tags=query.tags,
            limit=limit,
            cursor=query.cursor,
            created_after_ms=query.created_after_ms,
            created_before_ms=query.created_before_ms,
        )
        return JobList(
            jobs=[job_out(r) for r in records], next_cursor=after.encode() if after else None
        )

    @get(
        "/{job_id:str}/timeline",
        operation_id="getJobTimeline",
        responses=error_responses(404),
        summary="A job's transitions, oldest first: every attempt (claimed, and how it ended)",
    )
    async def job_timeline(
        self,
        job_id: JobId,
        services: Services,
        limit: TimelineLimitParam = 1000,
    ) -> Timeline:
        """A job of a run writes to its run's timeline (its events are picked out of it);
        a stand-alone job has its own only with TETHER_JOB_TIMELINES=1 (else this is
        empty, and the record holds the last attempt only)."""
        record = await services.engine.get_job(job_id)  # 404 for an unknown job
        owner = record.parent or job_id
        events = []
        for entry in await services.engine.timeline(owner, limit):
            if entry.get("job") != job_id:
                continue
            fields = {k: v for k, v in entry.items() if k not in ("id", "event", "at")}
            at = ms_to_datetime(int(entry.get("at") or entry["id"].split("-")[0]))
            assert at is not None
            events.append(
                TimelineEvent(id=entry["id"], event=entry.get("event", ""), at=at, fields=fields)
            )
        return Timeline(events=events)
