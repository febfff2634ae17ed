"""Typed views of what the engine stores and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel

from tether.protocol import ErrorInfo as ErrorInfo  # shared: lives in tether.protocol
from tether.protocol import JobStatus


class JobRecord(BaseModel):
    """A job as stored in ``{t:p}:job:<id>``."""

    id: str
    function: str
    status: JobStatus
    input: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    attempt: int = 0
    max_attempts: int = 1
    timeout_ms: int = 0
    machine: str | None = None
    parent: str | None = None
    enqueued_at: int | None = None
    scheduled_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    cancel_requested: bool = False
    tags: dict[str, str] | None = None
    priority: int = 0
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    waiting_on: dict[str, Any] | None = None  # why it does not start yet (queue features)
    expires_at: int | None = None  # ms; not started by then, it ends expired
    trace: str | None = None  # the compact trace context kept with it (None: none)

    @classmethod
    def from_hash(cls, job_id: str, data: dict[str, str]) -> JobRecord:
        """The record of ``job_id`` from its hash (which does not repeat the id: its
        key says it)."""

        def num(name: str) -> int | None:
            value = data.get(name)
            return int(value) if value not in (None, "") else None

        error = data.get("error")
        status = JobStatus(data["status"])
        return cls(
            id=job_id,
            function=data["fn"],
            status=status,
            input=orjson.loads(data["input"]) if "input" in data else None,
            result=orjson.loads(data["result"]) if "result" in data else None,
            error=ErrorInfo.model_validate_json(error) if error else None,
            attempt=num("attempt") or 0,
            max_attempts=num("max_attempts") or 1,
            timeout_ms=num("timeout_ms") or 0,
            machine=data.get("machine"),
            parent=data.get("parent"),
            enqueued_at=num("enqueued_at"),
            # A job made ready at once has no `scheduled_at` of its own (enqueue.lua).
            scheduled_at=num("scheduled_at") or num("enqueued_at"),
            started_at=num("started_at"),
            finished_at=num("finished_at"),
            cancel_requested=data.get("cancel_requested") == "1",
            tags=orjson.loads(data["tags"]) if data.get("tags") else None,
            priority=num("priority") or 0,
            concurrency_key=data.get("ckey"),
            concurrency_limit=num("climit"),
            waiting_on=orjson.loads(data["waiting_on"]) if data.get("waiting_on") else None,
            expires_at=num("expires_at"),
            trace=data.get("trace") or None,
        )


# The records made per job on the hottest paths (an enqueue's answer, a claimed job, an
# outcome and its verdict) are plain slotted dataclasses: a frozen one takes five times
# as long to build (each field set through object.__setattr__).
@dataclass(slots=True)
class Enqueued:
    """The answer to an enqueue: the job's id and status, and whether it is new."""

    id: str
    status: JobStatus
    created: bool
    enqueued_ms: int | None = None  # a created job's enqueued_at (Redis's clock)


@dataclass(slots=True)
class ClaimedJob:
    """A job leased to a machine: run it, then report as ``machine`` with ``token``
    (a lease is the pair: the token alone commits nothing)."""

    id: str
    function: str
    input: Any
    attempt: int
    max_attempts: int
    token: str
    timeout_ms: int
    parent: str | None = None
    machine: str = ""
    enqueued_ms: int | None = None  # when it was enqueued (ms, Redis's clock)
    trace: str | None = None  # its compact trace context, if one is kept with it


@dataclass(frozen=True, slots=True)
class PlaneState:
    """What the orchestrator's stamp found (QueueEngine.plane_pass): since when the plane
    has heard machines without a gap (0: never reset), the ms since the last pass and
    since the newest API liveness record (-1: none), and whether this one found a gap."""

    heard_ms: int
    since_pass_ms: int
    since_api_ms: int
    gap: bool = False


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    extended: int
    cancelled: list[str] = field(default_factory=list)  # stop these: cancellation asked
    lost: list[str] = field(default_factory=list)  # no longer held: drop their results


@dataclass(slots=True)
class Outcome:
    """What a machine reports for one job."""

    job_id: str
    token: str
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None
    retryable: bool = True
    # A retry after exactly this long (ms) instead of the backoff (arq's Retry(defer)).
    retry_in_ms: int | None = None


@dataclass(slots=True)
class Verdict:
    """Whether a reported outcome was committed; ``status`` is the job's status after."""

    job_id: str
    accepted: bool
    status: str
    reason: str | None = None
