"""The v1 HTTP contract: request and response bodies shared by the API, the workers and
the client. Field names here are what clients, docs and tests rely on.

Durations are seconds (floats); timestamps are ISO 8601 datetimes in UTC.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

import orjson
from litestar.params import KwargDefinition
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from tether.limits import (
    ID_REGEX,
    ID_REGEX_WITH_LENGTH,
    MAX_ATTEMPTS,
    MAX_CONCURRENCY,
    MAX_DELAY,
    MAX_EXPIRES,
    MAX_FUNCTIONS_PER_MACHINE,
    MAX_FUNCTIONS_PER_POLL,
    MAX_HELD,
    MAX_ID_LENGTH,
    MAX_INPUT_SCHEMA_BYTES,
    MAX_LOG_BATCH_JOBS,
    MAX_LOG_BATCH_LINES,
    MAX_META_BYTES,
    MAX_PRIORITY,
    MAX_RATE,
    MAX_RATE_PERIOD,
    MAX_TIMEOUT,
    MAX_WORKFLOW_VERSION,
    MIN_PRIORITY,
    MIN_RATE_PERIOD,
    MIN_TIMEOUT,
)

# Limits the client and the worker import from here (they were defined here first).
from tether.limits import MAX_BATCH as MAX_BATCH
from tether.limits import MAX_GET_WAIT as MAX_GET_WAIT
from tether.limits import MAX_JOBS_PER_POLL as MAX_JOBS_PER_POLL
from tether.limits import MAX_POLL_WAIT as MAX_POLL_WAIT

# An id or a name (``tether.limits``), as a type. Pydantic checks StringConstraints; the
# KwargDefinition beside it is read only by Litestar's OpenAPI generator, which drops the
# pattern of a constrained string inside an optional or a list otherwise.
IdStr = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_REGEX),
    KwargDefinition(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_REGEX),
]
Name = IdStr
# The same rule as a field default (``name: str = ID``), for code that prefers it.
ID = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_REGEX)
ID_PATTERN = re.compile(ID_REGEX_WITH_LENGTH)  # the same rule, for hand-written checks

# User tags on jobs and runs, given at creation and filtered on in listings
# (``?tag=key:value``): at most 20, keys like ids (at most 64), values at most 200.
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_REGEX)]
Tags = Annotated[
    dict[TagKey, Annotated[str, StringConstraints(max_length=200)]], Field(max_length=20)
]

# A job input that spells a call: {"$args": [...], "$kwargs": {...}}. tether.arq's
# enqueue_job sends it, so positional and keyword arguments reach the function as arq
# passes them whatever its parameters (tether/workers/binding.py binds it; the API's
# schema check at the door lets it through, the worker validates the arguments).
ARGS_KEY, KWARGS_KEY = "$args", "$kwargs"


def is_call(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {ARGS_KEY, KWARGS_KEY}


_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0f3c1e-7a8d-4c6e-9f21-3d4b5a6c7e80")


def idempotency_job_id(key: str) -> str:
    """The id of the job an idempotency key names (the same key, the same id): part of
    the contract, so a client can look a keyed job up before submitting it."""
    return uuid.uuid5(_IDEMPOTENCY_NAMESPACE, key).hex


# -- identities ------------------------------------------------------------------------

# What each role may do: docs/security.md and tether/api/access.py (the route table).
Role = Literal["admin", "app", "approver", "viewer", "machine"]
ROLES: tuple[str, ...] = ("admin", "app", "approver", "viewer", "machine")


class Body(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error, not a silent no-op, and
    are strict: a number is a JSON number, a flag is true or false (``"5"``, ``true`` for
    a number, ``0`` for a flag are refused, never read as something else). The API
    validates them strictly in any case (``PydanticPlugin(validate_strict=True)``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _json_size_at_most(value: Any, limit: int, what: str) -> Any:
    size = len(orjson.dumps(value))
    if size > limit:
        raise ValueError(f"{what} is {size} bytes as JSON; the limit is {limit}")
    return value


def ms_to_datetime(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


# -- the shared vocabulary: statuses and errors -------------------------------------------


class JobStatus(StrEnum):
    QUEUED = "queued"  # on its function's ready stream, waiting for a machine
    DELAYED = "delayed"  # waiting for its time (a delay or a retry backoff)
    RUNNING = "running"  # leased to a machine, which holds its fencing token
    COMPLETED = "completed"  # result committed (terminal)
    FAILED = "failed"  # failed with an error that is not retried (terminal)
    CANCELLED = "cancelled"  # cancelled before or while it ran (terminal)
    DEAD = "dead"  # every attempt failed (terminal)
    EXPIRED = "expired"  # not started by its `expires` time, so never run (terminal)


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD, JobStatus.EXPIRED}
)


class RunStatus(StrEnum):
    QUEUED = "queued"  # an activation is queued (or no machine serves its version yet)
    RUNNING = "running"  # an activation replays it on a machine
    WAITING = "waiting"  # holds no machine: waits on children, a timer, approval, signal
    COMPLETED = "completed"  # the workflow returned (terminal)
    FAILED = "failed"  # it raised, timed out or its activation was lost (terminal)
    CANCELLED = "cancelled"  # cancelled by request (terminal)


RUN_TERMINAL: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
)


class ErrorInfo(BaseModel):
    """Why an attempt failed."""

    type: str
    message: str
    traceback: str | None = None


# -- machines --------------------------------------------------------------------------


class FunctionSpec(Body):
    """A function a machine serves."""

    name: IdStr
    input_schema: dict[str, Any] | None = None  # JSON schema of the input, if typed
    timeout: float | None = Field(default=None, ge=MIN_TIMEOUT, le=MAX_TIMEOUT)  # seconds
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    kind: Literal["function", "workflow"] = "function"

    @field_validator("input_schema")
    @classmethod
    def _schema_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        result: dict[str, Any] = _json_size_at_most(value, MAX_INPUT_SCHEMA_BYTES, "the schema")
        return result


class HeartbeatRequest(Body):
    functions: list[FunctionSpec] = Field(
        default_factory=list, max_length=MAX_FUNCTIONS_PER_MACHINE
    )
    # Job ids it runs (only their length is checked here: this is the hot path, and an id
    # it does not hold is reported back as lost whatever it looks like).
    held: list[Annotated[str, Field(max_length=MAX_ID_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_HELD
    )
    max_jobs: int | None = Field(default=None, ge=1, le=MAX_JOBS_PER_POLL)
    meta: dict[str, Any] = Field(default_factory=dict)  # hostname, pid, version...

    @field_validator("meta")
    @classmethod
    def _meta_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        result: dict[str, Any] = _json_size_at_most(value, MAX_META_BYTES, "meta")
        return result


class HeartbeatResponse(BaseModel):
    cancel: list[str]  # job ids whose cancellation was requested: stop them
    lost: list[str]  # job ids this machine no longer holds: drop their results
    heartbeat_interval: float  # seconds until the next heartbeat is due
    lease_ttl: float


class PollRequest(Body):
    functions: list[Name] = Field(min_length=1, max_length=MAX_FUNCTIONS_PER_POLL)
    max_jobs: int = Field(default=1, ge=1, le=MAX_JOBS_PER_POLL)
    wait: float = Field(default=20.0, ge=0, le=MAX_POLL_WAIT)


class LeasedJob(BaseModel):
    id: str
    function: str
    input: Any
    attempt: int
    max_attempts: int
    token: str
    timeout: float | None  # seconds; None: no timeout
    parent: str | None = None
    # Seconds since the epoch (a number, not a datetime: polls carry thousands of jobs).
    enqueued_at: float | None = None
    # The compact trace context kept with the job (TraceContext.from_field reads it);
    # None: its trace follows from its id (job_trace).
    trace: str | None = None


class PollResponse(BaseModel):
    jobs: list[LeasedJob]


class ResultItem(Body):
    """One job's outcome. ``released`` hands the job back unfinished (shutdown)."""

    id: IdStr
    token: str = Field(min_length=1, max_length=40)
    status: Literal["completed", "failed", "released"]
    result: Any = None
    error: ErrorInfo | None = None
    retryable: bool = True
    # Retry after this many seconds rather than after the backoff (arq's Retry(defer)).
    retry_in: float | None = Field(default=None, ge=0, le=366 * 24 * 3600)


class LogBatch(Body):
    """The lines of one job (or workflow activation) held under ``token``, and how many
    lines the machine dropped for that job since its last batch (its buffer was full).

    Each line is one JSON object, sent as text (encoded once by the worker, stored as it
    is): ``{"ts", "level", "logger", "message", "exc"?, "job", "attempt", "step"?,
    "step_name"?}`` (docs/observability.md, Logs). The API stores a line as it is unless
    it is over ``MAX_LOG_LINE_CHARS``, then cuts its message and traceback; readers
    accept any line (a machine writes only its own jobs' logs)."""

    job: IdStr
    token: str = Field(min_length=1, max_length=40)
    lines: list[str] = Field(default_factory=list, max_length=MAX_LOG_BATCH_LINES)
    dropped: int = Field(default=0, ge=0, le=2**53)


class LogsRequest(Body):
    batches: list[LogBatch] = Field(min_length=1, max_length=MAX_LOG_BATCH_JOBS)


class LogsVerdict(BaseModel):
    job: str
    accepted: bool
    # Lines cut off the far end of the job's (or run's) stream to keep it bounded.
    trimmed: int = 0
    reason: str | None = None  # "not_found", "lease_not_held"


class LogsResponse(BaseModel):
    batches: list[LogsVerdict]


class LogLine(BaseModel):
    """One stored line: captured from ``logging`` (``source`` "logging") or written by a
    workflow's ``ctx.log`` (``source`` "ctx")."""

    cursor: str  # pass as ``after`` to read the lines after this one
    at: datetime  # when the API stored it
    ts: datetime | None = None  # when the machine logged it
    source: Literal["logging", "ctx"] = "logging"
    level: str = "INFO"
    logger: str = ""
    message: str = ""
    exc: str | None = None
    job: str | None = None
    run: str | None = None
    step: int | None = None
    step_name: str | None = None
    attempt: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)  # ctx.log's keyword fields


class LogPage(BaseModel):
    lines: list[LogLine]
    # Where the next read starts (``after``); the last line's cursor, or the one given.
    cursor: str | None
    # Lines lost: dropped by machines whose buffer was full, and cut off the stream's far
    # end to keep it bounded (its length per job or run is the deployment's setting).
    dropped: int = 0
    trimmed: int = 0
    finished: bool  # the job or run has ended: no more lines will come (bar late ones)


class ResultsRequest(Body):
    results: list[ResultItem] = Field(min_length=1, max_length=MAX_BATCH)
    # Log lines of these (or other held) jobs, stored before the results are committed:
    # a job's lines ride its result, no extra round trip (as POST .../logs, same rules).
    logs: list[LogBatch] | None = Field(default=None, max_length=MAX_LOG_BATCH_JOBS)


class ResultVerdict(BaseModel):
    id: str
    accepted: bool
    status: str  # the job's status after this report ("" if unknown)
    reason: str | None = None  # "lease_not_held", "not_found"


class ResultsResponse(BaseModel):
    results: list[ResultVerdict]


class MachineOut(BaseModel):
    id: str
    last_heartbeat: datetime
    first_seen: datetime | None
    jobs: int  # leases it holds now
    functions: list[str]
    meta: dict[str, Any]


class MachineList(BaseModel):
    machines: list[MachineOut]


class DeregisterResponse(BaseModel):
    released: list[str]  # jobs it still held, handed back to run elsewhere (normally none)


class FunctionOut(BaseModel):
    name: str
    kind: str
    input_schema: dict[str, Any] | None
    machines: list[str]  # live machines serving it
    queued: int  # ready jobs waiting


class FunctionList(BaseModel):
    functions: list[FunctionOut]


# -- jobs ------------------------------------------------------------------------------


# A job's expiry: seconds from now (more than 0), or a time with its UTC offset.
ExpiresIn = Annotated[float, Field(gt=0, le=MAX_EXPIRES, allow_inf_nan=False)]


class JobCreate(Body):
    function: IdStr
    input: Any = None
    idempotency_key: IdStr | None = None
    delay: float = Field(default=0, ge=0, le=MAX_DELAY)  # seconds
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    # Seconds; at least 1 ms (timeouts are kept in whole ms, and 0 would mean "none").
    timeout: float | None = Field(default=None, ge=MIN_TIMEOUT, le=MAX_TIMEOUT)
    tags: Tags | None = None
    # Queue features (docs/queue-features.md): higher priorities are claimed first; a
    # job with a concurrency key runs only while its key has a free slot.
    priority: int = Field(default=0, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    concurrency_key: IdStr | None = None
    # Slots of its key (default: the function's key_concurrency limit, else 1).
    concurrency_limit: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    # Not started by then, the job ends `expired` and never runs: seconds from now, or an
    # ISO 8601 time with its offset (one already past: the job is created expired).
    expires: ExpiresIn | AwareDatetime | None = None

    @field_validator("expires", mode="before")
    @classmethod
    def _expires_time(cls, value: Any) -> Any:
        # The body is validated strictly (no str -> datetime coercion): an ISO 8601
        # string is read here, so `expires` takes a number or a time, as documented.
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("expires must be seconds or an ISO 8601 time") from None
        return value

    @field_validator("expires")
    @classmethod
    def _expires_bound(cls, value: float | datetime | None) -> float | datetime | None:
        if isinstance(value, datetime):
            ahead = (value - datetime.now(UTC)).total_seconds()
            if ahead > MAX_EXPIRES:
                raise ValueError(f"expires must be at most {MAX_EXPIRES:g} seconds away")
        return value

    def expires_ms(self) -> int | None:
        """The expiry in ms from now (0 or less: already past), or None."""
        return expires_ms(self.expires)


def expires_ms(expires: float | datetime | None) -> int | None:
    """An expiry (seconds from now, or a time) as whole ms from now, rounded up so that a
    tiny duration is not "already past"; a time already past is 0 or less."""
    if expires is None:
        return None
    if isinstance(expires, datetime):
        seconds = (expires - datetime.now(UTC)).total_seconds()
    else:
        seconds = expires
    return math.ceil(seconds * 1000)


class JobBatchCreate(Body):
    jobs: list[JobCreate] = Field(min_length=1, max_length=MAX_BATCH)


class JobOut(BaseModel):
    id: str
    function: str
    status: str
    input: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    attempt: int
    max_attempts: int
    machine: str | None = None
    parent: str | None = None
    enqueued_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    expires_at: datetime | None = None  # not started by then: `expired` (None: never)

    tags: dict[str, str] | None = None
    trace_id: str | None = None  # as RunOut.trace_id
    priority: int = 0
    concurrency_key: str | None = None
    # Why a queued or delayed job does not start yet: {"kind": "concurrency", ...} (its
    # function's or its key's slots are taken) or {"kind": "rate_limit", ...}.
    waiting_on: dict[str, Any] | None = None


class JobList(BaseModel):
    jobs: list[JobOut]
    # Pass as ?cursor= for the next page; None: there is none. A page may hold fewer
    # than `limit` jobs and still have a next one (each page reads a bounded number).
    next_cursor: str | None = None


class JobBatchOut(BaseModel):
    jobs: list[JobOut]


# -- limits of a function (docs/queue-features.md) -----------------------------------------


class RateLimit(Body):
    """At most ``limit`` job starts per ``period`` seconds (bursts of up to ``limit``)."""

    limit: int = Field(ge=1, le=MAX_RATE)
    period: float = Field(ge=MIN_RATE_PERIOD, le=MAX_RATE_PERIOD)


class FunctionLimits(Body):
    """A function's limits; a field left out (null) is no limit."""

    # Jobs of the function running at once (per partition: docs/queue-features.md).
    concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    # Jobs of one concurrency key running at once, for jobs that name no limit of their own.
    key_concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    rate: RateLimit | None = None  # starts of the function
    key_rate: RateLimit | None = None  # starts per concurrency key


class FunctionLimitsOut(FunctionLimits):
    function: str


# -- runs (workflows) --------------------------------------------------------------------


class RunCreate(Body):
    workflow: IdStr
    input: Any = None
    id: IdStr | None = None  # the idempotency key: the same id is the same run
    version: int | None = Field(default=None, ge=1, le=MAX_WORKFLOW_VERSION)
    tags: Tags | None = None


class RunOut(BaseModel):
    id: str
    workflow: str
    version: int | None  # None until a machine serving the workflow is known
    status: str  # queued, running, waiting, completed, failed, cancelled
    waiting_on: dict[str, Any] | None = None  # e.g. {"kind": "approval", "key": "ship"}
    input: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    # Decisions and signals sent to the run that its code has not consumed (yet), e.g.
    # {"approvals": ["ship"], "signals": ["note"]}: a name the code never waits on stays
    # here. None when there are none.
    buffered: dict[str, list[str]] | None = None
    tags: dict[str, str] | None = None
    parent: str | None = None  # the run that started this one with ctx.child
    continued: int = 0  # times it continued as new (ctx.continue_as_new)
    # Only in the answer to a decision or a signal: "woken" (the run waited on it and
    # goes on now) or "buffered" (kept until the run waits for it, maybe never).
    delivery: Literal["woken", "buffered"] | None = None
    # The W3C trace id its spans (and its children's) carry: the caller's traceparent's,
    # or one made up when it came without (docs/observability.md, "Traces").
    trace_id: str | None = None


class RunList(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = None  # as JobList.next_cursor


class ApprovalDecision(Body):
    """The decider is the authenticated key (recorded as ``by``): a body naming one is
    refused (422), so nobody can decide in another's name."""

    approved: bool
    comment: str | None = Field(default=None, max_length=10_000)
    data: Any = None


class SignalSend(Body):
    payload: Any = None


class KeyCreate(Body):
    """``POST /v1/keys`` (admins): a new API key, shown once in the answer."""

    name: str = ID
    role: Role
    namespace: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    # Globs a machine key may serve (fnmatch, e.g. "billing.*"); None: any function.
    functions: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=100
    )


class KeyOut(BaseModel):
    name: str
    role: Role
    namespace: str
    functions: list[str] | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str  # the only time the key is ever shown


class KeyList(BaseModel):
    keys: list[KeyOut]


class WhoAmI(BaseModel):
    """``GET /v1/whoami``: the calling key, and what its role may do."""

    name: str
    role: str
    namespace: str
    permissions: list[str]  # public, self, read, submit, decide, machine, admin


class TimelineEvent(BaseModel):
    id: str  # stream entry id
    event: str
    at: datetime
    fields: dict[str, str]


class Timeline(BaseModel):
    events: list[TimelineEvent]


# -- what a workflow's activation and the control plane exchange -------------------------


ACTIVATION_PREFIX = "wf:"


def activation_function(workflow: str, version: int) -> str:
    """The queue function an activation of ``workflow`` at ``version`` is dispatched on:
    a machine serving v1 polls ``wf:name@1`` only, so versions never mix."""
    return f"{ACTIVATION_PREFIX}{workflow}@{version}"


def parse_activation_function(function: str) -> tuple[str, int] | None:
    """``wf:name@3`` -> ("name", 3); anything else -> None."""
    if not function.startswith(ACTIVATION_PREFIX) or "@" not in function:
        return None
    name, _, version = function[len(ACTIVATION_PREFIX) :].rpartition("@")
    return (name, int(version)) if version.isdigit() and name else None


@dataclass(frozen=True, slots=True)
class ActivationState:
    """What a machine needs to replay a run: its input and every recorded step."""

    run_id: str
    workflow: str
    version: int
    input: Any
    steps: dict[int, dict[str, Any]]
    failures: int  # failed attempts so far under the workflow's retry policy
    retries: int  # manual retries so far
    log_mark: int = -1  # number of the last ctx.log line written (see context.LOG_SLOTS)
    max_payload_bytes: int | None = None  # the limit on one step's result, in bytes
    # True: ``steps`` holds only the records asked for (sticky replay: the machine keeps
    # the rest in memory); False: the whole history.
    delta: bool = False


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A child to start as the step at ``position``: a job of ``function``, or with
    ``workflow``, a run of the workflow named ``function`` (``version``: None, the
    newest served; the API fills it in before the engine sees it)."""

    position: int
    function: str
    input: Any = None
    max_attempts: int | None = None
    timeout_ms: int | None = None
    workflow: bool = False
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a retry of a failed run resumes: the unhandled failure's position(s).

    ``reopen``: the records to drop so they run again (a failed step or wait, or every
    failed child of one ``gather``); ``after``: the last position kept, so what the code
    recorded after the failure (compensations, say) is dropped too. Records before, and
    failures that the code handled, are kept."""

    reopen: tuple[int, ...]
    after: int


@dataclass(frozen=True, slots=True)
class ChildrenWait:
    """The run waits until none of the child steps at ``positions`` is pending."""

    positions: tuple[int, ...]
    kind: ClassVar[str] = "children"

    def waiting_on(self) -> dict[str, Any]:
        return {"kind": self.kind, "positions": list(self.positions)}


@dataclass(frozen=True, slots=True)
class SleepWait:
    """The run sleeps ``ms`` from when the step at ``position`` was first recorded."""

    position: int
    ms: int
    name: str = "sleep"
    kind: ClassVar[str] = "sleep"

    def waiting_on(self) -> dict[str, Any]:
        return {"kind": self.kind, "position": self.position, "name": self.name}


@dataclass(frozen=True, slots=True)
class ApprovalWait:
    """The run waits for a decision on ``key`` (``timeout_ms``: then WaitTimeout)."""

    position: int
    key: str
    timeout_ms: int | None = None
    prompt: str | None = None
    data: Any = None
    kind: ClassVar[str] = "approval"

    def waiting_on(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"kind": self.kind, "position": self.position, "key": self.key}
        if self.prompt is not None:
            shown["prompt"] = self.prompt
        if self.data is not None:
            shown["data"] = self.data
        return shown


@dataclass(frozen=True, slots=True)
class SignalWait:
    """The run waits for signal ``name`` (``timeout_ms``: then WaitTimeout)."""

    position: int
    name: str
    timeout_ms: int | None = None
    kind: ClassVar[str] = "signal"

    def waiting_on(self) -> dict[str, Any]:
        return {"kind": self.kind, "position": self.position, "name": self.name}


# What a suspended run waits on: one of four typed kinds.
Wait = ChildrenWait | SleepWait | ApprovalWait | SignalWait


def wait_to_wire(wait: Wait) -> dict[str, Any]:
    """The wait as the suspend request carries it (the v1 body: kind, position, name,
    ms, positions, info)."""
    if isinstance(wait, ChildrenWait):
        return {"kind": wait.kind, "positions": list(wait.positions)}
    if isinstance(wait, SleepWait):
        return {"kind": wait.kind, "position": wait.position, "name": wait.name, "ms": wait.ms}
    if isinstance(wait, ApprovalWait):
        info: dict[str, Any] = {}
        if wait.prompt is not None:
            info["prompt"] = wait.prompt
        if wait.data is not None:
            info["data"] = wait.data
        return {
            "kind": wait.kind,
            "position": wait.position,
            "name": wait.key,
            "ms": wait.timeout_ms,
            "info": info,
        }
    return {"kind": wait.kind, "position": wait.position, "name": wait.name, "ms": wait.timeout_ms}


def wait_from_wire(
    kind: str,
    position: int | None,
    name: str,
    ms: int | None,
    positions: Sequence[int],
    info: dict[str, Any],
) -> Wait:
    """The typed wait of a suspend request; ``ValueError`` naming what is missing."""
    if kind == "children":
        return ChildrenWait(tuple(positions))
    if position is None or not name:
        raise ValueError(f"a {kind} wait needs a position and a name")
    if kind == "sleep":
        if ms is None:
            raise ValueError("a sleep needs a duration (ms)")
        return SleepWait(position, ms, name)
    if kind == "approval":
        return ApprovalWait(position, name, ms, info.get("prompt"), info.get("data"))
    if kind == "signal":
        return SignalWait(position, name, ms)
    raise ValueError(f"unknown wait kind {kind!r}")


WAIT_KINDS = frozenset({"children", "sleep", "approval", "signal"})


# -- schedules ---------------------------------------------------------------------------

# No '@' in a name: a trigger's id is `sched:<name>@<key>` (tether/queue/schedules.py).
SCHEDULE_NAME = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.:\-]+$")


class ScheduleCreate(Body):
    """A schedule: ``cron`` or ``every``, starting a job of ``function`` or a run of
    ``workflow``. Putting one whose name exists redefines it (the same definition again
    changes nothing, so a worker can register its cron jobs at every start)."""

    name: str = SCHEDULE_NAME
    function: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@\-]+$"
    )
    workflow: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@\-]+$"
    )
    input: Any = None
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    every: float | None = Field(default=None, ge=1, le=366 * 24 * 3600)  # seconds
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    misfire: Literal["skip", "catch_up_once"] = "skip"
    grace: float = Field(default=60, ge=0, le=366 * 24 * 3600)  # seconds
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)  # seconds
    paused: bool = False  # for a new schedule; an existing one keeps its own
    source: Literal["api", "worker"] = "api"  # who declared it (workers: cron_jobs)


class ScheduleOut(BaseModel):
    name: str
    function: str | None
    workflow: str | None
    input: Any = None
    cron: str | None
    every: float | None  # seconds
    timezone: str
    misfire: str
    grace: float  # seconds
    max_attempts: int | None
    timeout: float | None  # seconds
    paused: bool
    next_fire: datetime | None  # None while paused
    last_tick: datetime | None  # the last tick that fired
    last_id: str | None  # the job or run it started last
    last_fired_at: datetime | None
    fired: int  # jobs or runs its ticks started
    missed: int  # ticks passed over (outages, misfire policy)
    source: str
    created_at: datetime | None
    updated_at: datetime | None


class MachineSchedules(Body):
    """A worker's cron_jobs: schedules of jobs of the functions it serves (each named as
    its function), and those to trigger once now (``run_at_startup``)."""

    schedules: list[ScheduleCreate] = Field(default_factory=list, max_length=1000)
    trigger: list[str] = Field(default_factory=list, max_length=1000)


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


class ScheduleTrigger(Body):
    key: str | None = Field(  # the same key starts one job or run, however often sent
        default=None, min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_.:@\-]+$"
    )


class ScheduleDeleted(BaseModel):
    name: str
    deleted: bool  # always true: a schedule that does not exist is a 404


class ScheduleFired(BaseModel):
    name: str
    id: str  # the job or run it started (or that the key had started)
    kind: Literal["job", "run"]
    created: bool


# -- webhooks (docs/webhooks.md) ---------------------------------------------------------

WebhookEvent = Literal[
    "run.awaiting_approval", "run.completed", "run.failed", "run.cancelled", "job.failed"
]


def _default_webhook_events() -> list[WebhookEvent]:
    return ["run.awaiting_approval", "run.completed", "run.failed"]


class WebhookCreate(Body):
    """``POST /v1/webhooks`` (admins): where to POST which run events of the namespace.
    ``secret`` signs every delivery; made up when absent, shown once in the answer."""

    url: str = Field(min_length=1, max_length=2048)
    events: list[WebhookEvent] = Field(
        default_factory=_default_webhook_events,
        min_length=1,
        max_length=5,
    )
    secret: str | None = Field(default=None, min_length=16, max_length=256)
    description: str = Field(default="", max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    created_by: str  # the name of the key that made it
    created_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str  # the only time the secret is shown


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class WebhookDeleted(BaseModel):
    id: str
    deleted: bool


class DeliveryOut(BaseModel):
    id: str  # the same on every attempt (header Tether-Delivery)
    event_id: str
    event: str
    run: str | None  # None for job.failed
    job: str | None  # job.failed: the job
    state: Literal["pending", "delivering", "retrying", "delivered", "failed", "dropped"]
    attempts: int
    last_status_code: int | None  # the receiver's last answer (None: none came)
    last_error: str
    next_try_at: datetime | None  # retrying: when; delivering: when its claim lapses
    created_at: datetime | None
    finished_at: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


# -- errors ----------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


# -- traces (W3C Trace Context) ------------------------------------------------------------

# `traceparent`: version-traceid-spanid-flags, lowercase hex. Version 00 is exactly 55
# characters; a later version may append fields after a '-' (the spec's forward rule).
# Anything longer than this is refused unread: the header is attacker-sized otherwise.
MAX_TRACEPARENT = 256
MAX_TRACESTATE = 512  # the spec's floor for what a vendor propagates; longer is dropped
MAX_TRACESTATE_MEMBERS = 32
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?")
_TRACESTATE_MEMBER = re.compile(
    r"[ \t]*(?:[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
    r"=[ -+\--<>-~]{0,255}[!-+\--<>-~][ \t]*"
)
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_HEX32 = re.compile(r"[0-9a-f]{32}")
_FIELD = re.compile(r"[0-9a-f]{50}(?: |$)")
# The compact form kept in a record's `trace` field: trace id, span id and flags (50
# characters), then a space and the tracestate if there is one.
TRACE_FIELD_CONTEXT = 50


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Where a job's or a run's spans hang in a trace: the caller's trace id and span id
    (the parent of what tether records), its flags and its vendor state."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits, not all zero
    flags: str = "01"  # 2 hex digits; bit 0: sampled
    state: str = ""  # the tracestate header, as received ('' = none)

    @property
    def sampled(self) -> bool:
        return int(self.flags, 16) & 1 == 1

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def to_field(self) -> str:
        ctx = f"{self.trace_id}{self.span_id}{self.flags}"
        return f"{ctx} {self.state}" if self.state else ctx

    @classmethod
    def from_field(cls, value: str | None) -> TraceContext | None:
        """A stored `trace` field; None for none or anything malformed."""
        if not value or not _FIELD.match(value):
            return None
        trace_id, span_id = value[:32], value[32:48]
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        return cls(trace_id, span_id, value[48:50], value[TRACE_FIELD_CONTEXT + 1 :])

    def child(self, span_id: str) -> TraceContext:
        """The same trace, with ``span_id`` as the parent of what comes next."""
        return TraceContext(self.trace_id, span_id, self.flags, self.state)


def parse_traceparent(
    traceparent: str | None, tracestate: str | None = None
) -> TraceContext | None:
    """The context a ``traceparent`` header (and its ``tracestate``) names, or None when it
    is absent or invalid: the W3C rule is that a receiver that cannot parse it starts a
    new trace rather than refusing the request (an observability header never makes a
    job fail). Invalid: not the format, uppercase hex, version ff, a version-00 header of
    another length, an all-zero trace id or span id, or longer than MAX_TRACEPARENT. A
    tracestate that is malformed or too long is dropped alone."""
    if not traceparent or len(traceparent) > MAX_TRACEPARENT:
        return None
    m = _TRACEPARENT.fullmatch(traceparent.strip(" \t"))
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags, _tracestate(tracestate))


def _tracestate(value: str | None) -> str:
    if not value or len(value) > MAX_TRACESTATE:
        return ""
    members = [m for m in value.split(",") if m.strip(" \t")]
    if len(members) > MAX_TRACESTATE_MEMBERS:
        return ""
    if not all(_TRACESTATE_MEMBER.fullmatch(m) for m in members):
        return ""
    return ",".join(m.strip(" \t") for m in members)


def derived_id(seed: str, hex_digits: int = 16) -> str:
    """A trace id (32) or span id (16) that follows from ``seed``: the control plane and
    every worker compute the same one without storing it (a child's parent span, a job's
    made-up trace). Never all zero."""
    digest = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()[:hex_digits]
    return digest if digest.strip("0") else "1".rjust(hex_digits, "0")


def job_trace(job_id: str, stored: str | None) -> TraceContext:
    """A job's trace context: the one kept with it (given on submission, or the API's
    enqueue span), else one made up from its id: a random job id (32 hex digits, 128
    random bits) is its own trace id, and its second half the parent span id, so nothing
    is stored for a job submitted without a traceparent while tracing is off."""
    ctx = TraceContext.from_field(stored)
    if ctx is not None:
        return ctx
    if _HEX32.fullmatch(job_id) and job_id[:16] != _ZERO_SPAN and job_id[16:] != _ZERO_SPAN:
        return TraceContext(job_id, job_id[16:])
    return TraceContext(derived_id(job_id, 32), derived_id(job_id + "/enqueue"))


def job_trace_id(job_id: str, stored: str | None) -> str:
    """``job_trace(job_id, stored).trace_id``, for every job of an answer: the common
    cases without building a TraceContext."""
    if stored is None:
        if _HEX32.fullmatch(job_id) and _ZERO_SPAN not in (job_id[:16], job_id[16:]):
            return job_id
    elif _FIELD.match(stored) and stored[:32] != _ZERO_TRACE and stored[32:48] != _ZERO_SPAN:
        return stored[:32]
    return job_trace(job_id, stored).trace_id


def job_traceparent(job_id: str, stored: str | None) -> str:
    """``job_trace(job_id, stored).traceparent``, on every attempt's path: the common
    cases without building a TraceContext."""
    if stored is None:
        if _HEX32.fullmatch(job_id) and _ZERO_SPAN not in (job_id[:16], job_id[16:]):
            return f"00-{job_id}-{job_id[16:]}-01"
    elif _FIELD.match(stored) and stored[:32] != _ZERO_TRACE and stored[32:48] != _ZERO_SPAN:
        return f"00-{stored[:32]}-{stored[32:48]}-{stored[48:50]}"
    return job_trace(job_id, stored).traceparent


def new_trace() -> TraceContext:
    """A fresh trace: random ids (the spec's rule for a trace made up by its first hop)."""
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))
