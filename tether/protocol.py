"""The v1 HTTP contract: request and response bodies shared by the API, the workers and
the client. Field names here are what clients, docs and tests rely on.

Durations are seconds (floats); timestamps are ISO 8601 datetimes in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from litestar.params import KwargDefinition
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tether.limits import (
    ID_REGEX,
    MAX_ATTEMPTS,
    MAX_DELAY,
    MAX_FUNCTIONS_PER_MACHINE,
    MAX_FUNCTIONS_PER_POLL,
    MAX_HELD,
    MAX_ID_LENGTH,
    MAX_INPUT_SCHEMA_BYTES,
    MAX_META_BYTES,
    MAX_TIMEOUT,
    MAX_WORKFLOW_VERSION,
    MIN_TIMEOUT,
)

# Limits the client and the worker import from here (they were defined here first).
from tether.limits import MAX_BATCH as MAX_BATCH
from tether.limits import MAX_GET_WAIT as MAX_GET_WAIT
from tether.limits import MAX_JOBS_PER_POLL as MAX_JOBS_PER_POLL
from tether.limits import MAX_POLL_WAIT as MAX_POLL_WAIT
from tether.queue.records import ErrorInfo, JobRecord

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


class ResultsRequest(Body):
    results: list[ResultItem] = Field(min_length=1, max_length=MAX_BATCH)


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


class JobCreate(Body):
    function: IdStr
    input: Any = None
    idempotency_key: IdStr | None = None
    delay: float = Field(default=0, ge=0, le=MAX_DELAY)  # seconds
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    # Seconds; at least 1 ms (timeouts are kept in whole ms, and 0 would mean "none").
    timeout: float | None = Field(default=None, ge=MIN_TIMEOUT, le=MAX_TIMEOUT)


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

    @classmethod
    def from_record(cls, r: JobRecord) -> JobOut:
        return cls(
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
        )


class JobList(BaseModel):
    jobs: list[JobOut]


class JobBatchOut(BaseModel):
    jobs: list[JobOut]


# -- runs (workflows) --------------------------------------------------------------------


class RunCreate(Body):
    workflow: IdStr
    input: Any = None
    id: IdStr | None = None  # the idempotency key: the same id is the same run
    version: int | None = Field(default=None, ge=1, le=MAX_WORKFLOW_VERSION)


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


class RunList(BaseModel):
    runs: list[RunOut]


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


class TimelineEvent(BaseModel):
    id: str  # stream entry id
    event: str
    at: datetime
    fields: dict[str, str]


class Timeline(BaseModel):
    events: list[TimelineEvent]


# -- errors ----------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail
