"""The run engine: workflow runs, their step records and waits, in Redis.

One typed method per Lua transition (``lua/*_run.lua``, ``record_step``, ...), next to
the queue engine it builds on: a run's activations and child calls are ordinary jobs
(``<run>:a<n>`` on ``wf:<workflow>@<version>``, ``<run>:c<position>``) whose parent is the
run, so they live in the run's partition and their scripts can update the run in the same
atomic step (see ``lua/includes/run_job_finished.lua``).

Run states::

    queued -> running -> completed | failed | cancelled
    running -> waiting -> queued          (children, timer, approval, signal, retry)
    failed -> queued                      (retry from the unhandled failure)
    queued | waiting -> cancelled | failed (workflow timeout)
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from tether.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidTransition,
    LeaseNotHeld,
    NotFound,
    TetherError,
    ValidationFailed,
)
from tether.protocol import (
    ACTIVATION_PREFIX,
    RUN_TERMINAL,
    WAIT_KINDS,
    ActivationState,
    ChildSpec,
    ErrorInfo,
    Resume,
    RunStatus,
    Wait,
    activation_function,
    new_trace,
    parse_activation_function,
    wait_to_wire,
)
from tether.queue.config import QueueConfig
from tether.queue.engine import (
    ID_CONFLICT,
    MISSING,
    NOT_HELD,
    OK,
    WRONG_STATE,
    HandOff,
    QueueEngine,
    check_id,
    check_name,
)
from tether.queue.index import Cursor, Source, page, tags_match
from tether.queue.keys import PartitionKeys
from tether.queue.payload import dump_payload
from tether.queue.records import ClaimedJob
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import register_scripts

# Shared with the API, the workers and the client (tether/protocol.py); named here too
# for the engine's callers.
__all__ = [
    "ACTIVATION_PREFIX",
    "RUN_TERMINAL",
    "WAIT_KINDS",
    "ActivationState",
    "ChildSpec",
    "Resume",
    "RunEngine",
    "RunRecord",
    "RunStatus",
    "Started",
    "Wait",
    "activation_function",
    "parse_activation_function",
    "served_versions",
    "trim_runs_index",
]

# Reply codes of the run scripts beyond those of the job scripts (engine.py).
OTHER_STEP, DECIDED = -5, -6


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored in ``{t:p}:run:<id>``."""

    id: str
    workflow: str
    version: int | None
    status: RunStatus
    waiting_on: dict[str, Any] | None
    input: Any
    result: Any
    error: ErrorInfo | None
    created_at: int | None
    updated_at: int | None
    finished_at: int | None
    activations: int
    activation_job: str | None
    wake_at: int | None
    retries: int
    failures: int
    # Decisions and signals the run holds that its code has not consumed (yet).
    held_approvals: tuple[str, ...] = ()
    held_signals: tuple[str, ...] = ()
    tags: dict[str, str] | None = None  # the caller's labels, given at start
    parent: str | None = None  # the run that started it with ctx.child, if any
    continued: int = 0  # times it continued as new (ctx.continue_as_new)
    trace: str | None = None  # its compact trace context (TraceContext.to_field)

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> RunRecord:
        def num(name: str) -> int | None:
            value = data.get(name)
            return int(value) if value not in (None, "") else None

        def js(name: str) -> Any:
            value = data.get(name)
            return orjson.loads(value) if value else None

        error = data.get("error")
        return cls(
            id=data["id"],
            workflow=data["workflow"],
            version=num("version"),
            status=RunStatus(data["status"]),
            waiting_on=js("waiting_on"),
            input=js("input"),
            result=js("result"),
            error=ErrorInfo.model_validate_json(error) if error else None,
            created_at=num("created_at"),
            updated_at=num("updated_at"),
            finished_at=num("finished_at"),
            activations=num("activations") or 0,
            activation_job=data.get("act_job") or None,
            wake_at=num("wake_at"),
            retries=num("retries") or 0,
            failures=num("failures") or 0,
            held_approvals=tuple(filter(None, data.get("held_approvals", "").split(","))),
            held_signals=tuple(filter(None, data.get("held_signals", "").split(","))),
            tags=js("tags"),
            parent=data.get("parent") or None,
            continued=num("continued") or 0,
            trace=data.get("trace") or None,
        )


@dataclass(frozen=True, slots=True)
class Started:
    id: str
    status: RunStatus
    created: bool
    version: int | None
    record: RunRecord | None = None  # the run as the start left it


class RunEngine:
    """Workflow runs in Redis: one method per transition, plus queries."""

    def __init__(self, redis: Client, config: QueueConfig | None = None) -> None:
        self.redis = redis
        self.config = config or QueueConfig()
        self.keys = self.config.keys
        self.activation_max_attempts = 10
        self._scripts = register_scripts(redis)

    # -- helpers -------------------------------------------------------------------

    def _dump(self, value: Any, what: str) -> str:
        return dump_payload(value, what, self.config.max_payload_bytes)

    def _pk(self, run_id: str) -> PartitionKeys:
        return self.keys.for_id(check_id(run_id, "run id"))

    @staticmethod
    def _check(reply: list[Any], run_id: str, job_id: str | None = None) -> None:
        code = int(reply[0])
        if code == OK:
            return
        if code == MISSING:
            what = f"run {run_id}" + (f" or activation {job_id}" if job_id else "")
            raise NotFound(f"no {what}", details={"id": run_id})
        if code == NOT_HELD:
            raise LeaseNotHeld(
                f"activation {job_id} of run {run_id} is stale or its lease is not held "
                f"with this token (job is {reply[1] or 'gone'})",
                details={"id": run_id, "job": job_id, "status": reply[1]},
            )
        if code == WRONG_STATE:
            raise InvalidTransition(
                f"run {run_id} is {reply[1]}", details={"id": run_id, "status": reply[1]}
            )
        raise Conflict(f"run {run_id}: rejected ({reply})", details={"id": run_id})

    def _logs(self, logs: Sequence[dict[str, Any]]) -> list[str]:
        # Each line as a payload: one that is not JSON (an integer past 64 bits) is a 422
        # naming ``logs``, not a 500.
        return [self._dump(line, "logs") for line in logs]

    # -- transitions ---------------------------------------------------------------

    async def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        run_id: str | None = None,
        version: int | None = None,
        tags: dict[str, str] | None = None,
        trace: str | None = None,
    ) -> Started:
        """Create a run (or return the one with this id). ``version`` None: the run
        waits until a machine serving the workflow is known (see ``assign_version``).
        ``trace``: its compact trace context; None, a new trace. A run always keeps one
        (runs are not the hot path), since its activations and children all share it."""
        name, keys, args = self._start_call(workflow, input, run_id, version, tags, trace)
        with redis_errors():
            reply = await self._scripts[name](keys, args)
        return self._started(reply, args[1], workflow)

    async def start_and_claim(
        self,
        engine: QueueEngine,
        hand_off: HandOff,
        workflow: str,
        input: Any = None,
        *,
        run_id: str | None = None,
        version: int | None = None,
        tags: dict[str, str] | None = None,
        trace: str | None = None,
    ) -> tuple[Started, list[ClaimedJob]]:
        """``start``, and the claim of ``hand_off`` (a long poll waiting in this process)
        in the same round trip, in the run's partition: the run's first activation
        reaches a waiting machine with one Redis write (one AOF fsync) instead of a
        start, a notification, then a claim. If the start fails, what was claimed is
        handed back before the error is raised."""
        name, keys, args = self._start_call(workflow, input, run_id, version, tags, trace)
        pk = self.keys.for_id(args[1])
        calls = [(name, keys, args), engine._claim_call(pk, hand_off, require_live=True)]
        with redis_errors():
            replies = await engine._pipelined(calls, raise_errors=False)
        claimed = (
            []
            if isinstance(replies[1], Exception)
            else engine._claimed(replies[1], hand_off.machine)
        )
        try:
            if isinstance(replies[0], Exception):
                with redis_errors():
                    raise replies[0]
            return self._started(replies[0], args[1], workflow), claimed
        except TetherError:
            for job in claimed:
                with contextlib.suppress(TetherError):
                    await engine.release(job.id, job.token, machine=job.machine)
            raise

    def _start_call(
        self,
        workflow: str,
        input: Any,
        run_id: str | None,
        version: int | None,
        tags: dict[str, str] | None,
        trace: str | None = None,
    ) -> tuple[str, list[str], list[Any]]:
        check_name(workflow, "workflow")
        run_id = check_id(run_id, "id") if run_id else uuid.uuid4().hex
        if version is not None and version < 1:
            raise ValidationFailed("version must be at least 1", details={"field": "version"})
        pk = self.keys.for_id(run_id)
        return (
            "start_run",
            [pk.run(run_id), pk.runs, pk.unversioned],
            [
                pk.prefix,
                run_id,
                workflow,
                "" if version is None else version,
                self._dump(input, "input"),
                self.config.retention_ms,
                self.config.timeline_maxlen,
                self.activation_max_attempts,
                orjson.dumps(tags).decode() if tags else "",
                trace or new_trace().to_field(),
            ],
        )

    @staticmethod
    def _started(reply: list[Any], run_id: str, workflow: str) -> Started:
        if int(reply[0]) == ID_CONFLICT:
            raise IdempotencyConflict(
                f"run {run_id} already exists for workflow {reply[1]!r}, not {workflow!r}",
                details={"id": run_id, "workflow": reply[1]},
            )
        flat = reply[4] if len(reply) > 4 else []
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        return Started(
            run_id,
            RunStatus(reply[1]),
            int(reply[2]) == 1,
            int(reply[3]) if reply[3] else None,
            RunRecord.from_hash(record) if record else None,
        )

    async def assign_version(self, run_id: str, version: int) -> bool:
        pk = self._pk(run_id)
        with redis_errors():
            done = await self._scripts["assign_version"](
                [pk.run(run_id), pk.unversioned], [pk.prefix, run_id, version]
            )
        return int(done) == 1

    async def begin(
        self,
        run_id: str,
        job_id: str,
        token: str,
        *,
        machine: str,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        resume: str | None = None,
        positions: Sequence[int] = (),
    ) -> ActivationState:
        """Start replaying: the run becomes running; returns input and recorded steps.
        ``resume``: the activation after which this machine kept the run's replay in
        memory; if nothing but waits changed since, the answer holds only the records
        at ``positions`` (``delta``), else the whole history."""
        pk = self._pk(run_id)
        with redis_errors():
            reply = await self._scripts["begin_activation"](
                [pk.run(run_id), pk.steps(run_id), pk.job(job_id), pk.run_deadlines],
                [
                    pk.prefix,
                    run_id,
                    job_id,
                    token,
                    machine,
                    max_attempts or "",
                    "" if timeout_ms is None else timeout_ms,
                    resume or "",
                    ",".join(str(int(p)) for p in positions) if resume else "",
                    self.config.sticky_timeout_ms,
                ],
            )
        self._check(reply, run_id, job_id)
        flat = reply[4]
        steps = {int(flat[i]): orjson.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
        return ActivationState(
            run_id=run_id,
            workflow=reply[1],
            version=int(reply[2]),
            input=orjson.loads(reply[3]) if reply[3] else None,
            steps=steps,
            failures=int(reply[5]),
            retries=int(reply[6]),
            log_mark=int(reply[7]),
            max_payload_bytes=self.config.max_payload_bytes,
            delta=int(reply[8]) == 1,
        )

    async def record_step(
        self,
        run_id: str,
        job_id: str,
        token: str,
        position: int,
        record: dict[str, Any],
        logs: Sequence[dict[str, Any]] = (),
        *,
        machine: str,
    ) -> str:
        """Durably record one step (``record`` has name, kind, status, result|error).
        Returns 'recorded', or 'exists' when this step was recorded already."""
        name = record.get("name")
        if not isinstance(name, str) or position < 0:
            raise ValidationFailed(
                "a step needs a name and a position >= 0", details={"field": "name"}
            )
        pk = self._pk(run_id)
        with redis_errors():
            reply = await self._scripts["record_step"](
                [pk.run(run_id), pk.steps(run_id), pk.job(job_id)],
                [
                    pk.prefix,
                    run_id,
                    job_id,
                    token,
                    machine,
                    position,
                    name,
                    str(record.get("status", "")),
                    self._dump(record, "step"),
                    *self._logs(logs),
                ],
            )
        if int(reply[0]) == OTHER_STEP:
            raise Conflict(
                f"run {run_id} has step {reply[1]!r} recorded at position {position}, not {name!r}",
                details={"id": run_id, "position": position, "recorded": reply[1]},
            )
        self._check(reply, run_id, job_id)
        return str(reply[1])

    async def complete(
        self,
        run_id: str,
        job_id: str,
        token: str,
        result: Any,
        logs: Sequence[dict[str, Any]] = (),
        *,
        machine: str,
    ) -> str:
        pk = self._pk(run_id)
        with redis_errors():
            reply = await self._scripts["complete_run"](
                [pk.run(run_id), pk.job(job_id)],
                [
                    pk.prefix,
                    run_id,
                    job_id,
                    token,
                    machine,
                    self._dump(result, "result"),
                    *self._logs(logs),
                ],
            )
        self._check(reply, run_id, job_id)
        return str(reply[1])

    async def fail(
        self,
        run_id: str,
        job_id: str,
        token: str,
        error: ErrorInfo,
        *,
        machine: str,
        resume: Resume | None = None,
        retryable: bool = True,
        logs: Sequence[dict[str, Any]] = (),
    ) -> str:
        """The workflow raised: 'waiting' (a retry is scheduled) or 'failed'. ``resume``
        says where a retry resumes (None: after the last record, nothing is dropped)."""
        pk = self._pk(run_id)
        backoff = min(self.config.backoff_max_ms, self.config.backoff_ms)
        with redis_errors():
            reply = await self._scripts["fail_run"](
                [pk.run(run_id), pk.job(job_id), pk.steps(run_id), pk.timers],
                [
                    pk.prefix,
                    run_id,
                    job_id,
                    token,
                    machine,
                    self._dump(error.model_dump(exclude_none=True), "error"),
                    "" if resume is None else ",".join(str(p) for p in resume.reopen),
                    "" if resume is None else resume.after,
                    1 if retryable else 0,
                    int(backoff * (0.5 + random.random() / 2)),
                    *self._logs(logs),
                ],
            )
        self._check(reply, run_id, job_id)
        return str(reply[1])

    async def continue_as_new(
        self,
        run_id: str,
        job_id: str,
        token: str,
        input: Any,
        logs: Sequence[dict[str, Any]] = (),
        *,
        machine: str,
    ) -> str:
        """Start the run over with ``input`` and an empty history: 'queued'."""
        pk = self._pk(run_id)
        with redis_errors():
            reply = await self._scripts["continue_run"](
                [pk.run(run_id), pk.job(job_id), pk.steps(run_id)],
                [
                    pk.prefix,
                    run_id,
                    job_id,
                    token,
                    machine,
                    self._dump(input, "input"),
                    *self._logs(logs),
                ],
            )
        self._check(reply, run_id, job_id)
        return str(reply[1])

    async def suspend(
        self,
        run_id: str,
        job_id: str,
        token: str,
        wait: Wait,
        children: Sequence[ChildSpec] = (),
        logs: Sequence[dict[str, Any]] = (),
        *,
        machine: str,
        refused: Mapping[int, ErrorInfo] | None = None,
    ) -> str:
        """End the activation until ``wait`` is satisfied: 'waiting', or 'queued' when it
        already is (the next activation is queued at once). A child whose position is in
        ``refused`` is not started: its step is recorded failed with that error."""
        wire = wait_to_wire(wait)
        position, ms = wire.get("position"), wire.get("ms")
        pk = self._pk(run_id)
        child_args: list[Any] = []
        for child in children:
            check_name(child.function, "function")
            refusal = (refused or {}).get(child.position)
            if child.workflow and child.version is None and refusal is None:
                raise ValidationFailed(
                    f"child run of {child.function!r} at {child.position} needs a version",
                    details={"field": "version"},
                )
            child_args += [
                child.position,
                child.function,
                self._dump(child.input, "input"),
                child.max_attempts or self.config.default_max_attempts,
                self.config.default_timeout_ms if child.timeout_ms is None else child.timeout_ms,
                ""
                if refusal is None
                else self._dump(refusal.model_dump(exclude_none=True), "error"),
                (child.version or 0) if child.workflow else "",
            ]
        with redis_errors():
            reply = await self._scripts["suspend_run"](
                [
                    pk.run(run_id),
                    pk.job(job_id),
                    pk.steps(run_id),
                    pk.timers,
                    pk.approvals(run_id),
                    pk.signals(run_id),
                ],
                [
                    pk.prefix,
                    run_id,
                    job_id,
                    token,
                    machine,
                    wait.kind,
                    self._dump(wait.waiting_on(), "waiting_on"),
                    "" if position is None else position,
                    wire.get("name", ""),
                    "" if ms is None else max(0, ms),
                    ",".join(str(p) for p in wire.get("positions", ())),
                    len(children),
                    *child_args,
                    *self._logs(logs),
                ],
            )
        self._check(reply, run_id, job_id)
        return str(reply[1])

    async def decide(
        self,
        run_id: str,
        key: str,
        *,
        approved: bool,
        by: str | None = None,
        comment: str | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Record the decision on approval ``key`` (once; a second one is a Conflict).
        Returns the stored decision, with the server's time as ``at`` (ms)."""
        check_id(key, "key")
        pk = self._pk(run_id)
        decision = {"approved": approved, "by": by, "comment": comment, "data": data}
        with redis_errors():
            reply = await self._scripts["decide_approval"](
                [pk.run(run_id), pk.approvals(run_id)],
                [pk.prefix, run_id, key, self._dump(decision, "decision")],
            )
        if int(reply[0]) == DECIDED:
            raise Conflict(
                f"approval {key!r} of run {run_id} was decided already",
                details={"id": run_id, "key": key, "decision": orjson.loads(reply[1])},
            )
        self._check(reply, run_id)
        stored: dict[str, Any] = orjson.loads(reply[1])
        stored["delivered"] = reply[2] == "woken"
        return stored

    async def signal(
        self, run_id: str, name: str, payload: Any = None, *, by: str | None = None
    ) -> str:
        """Deliver a signal: 'woken' (the run waited on it) or 'buffered'. ``by`` (the
        sending key's name) goes on the run's timeline."""
        check_id(name, "name")
        pk = self._pk(run_id)
        with redis_errors():
            reply = await self._scripts["send_signal"](
                [pk.run(run_id), pk.signals(run_id)],
                [pk.prefix, run_id, name, self._dump(payload, "payload"), by or ""],
            )
        self._check(reply, run_id)
        return str(reply[1])

    async def cancel(self, run_id: str, reason: str = "cancelled by request") -> str:
        pk = self._pk(run_id)
        error = orjson.dumps({"type": "Cancelled", "message": reason}).decode()
        with redis_errors():
            reply = await self._scripts["cancel_run"]([pk.run(run_id)], [pk.prefix, run_id, error])
        self._check(reply, run_id)
        return str(reply[1])

    async def retry(self, run_id: str) -> str:
        pk = self._pk(run_id)
        with redis_errors():
            reply = await self._scripts["retry_run"](
                [pk.run(run_id), pk.steps(run_id), pk.run_deadlines], [pk.prefix, run_id]
            )
        self._check(reply, run_id)
        return str(reply[1])

    def _parts(self, partitions: Iterable[int] | None) -> list[PartitionKeys]:
        """The keys of ``partitions`` (an orchestrator's share), or of every partition."""
        if partitions is None:
            return self.keys.all_partitions()
        return [self.keys.partition(i) for i in partitions]

    async def wake_timers(
        self, limit: int = 1000, *, partitions: Iterable[int] | None = None
    ) -> int:
        """Wake runs whose timer is due, in every partition (or in ``partitions``);
        returns how many."""
        woken = 0
        with redis_errors():
            for pk in self._parts(partitions):
                woken += int(await self._scripts["wake_timers"]([pk.timers], [pk.prefix, limit]))
        return woken

    async def expire_runs(
        self, limit: int = 1000, *, partitions: Iterable[int] | None = None
    ) -> int:
        """Fail runs past their workflow-level timeout; returns how many."""
        expired = 0
        with redis_errors():
            for pk in self._parts(partitions):
                expired += int(
                    await self._scripts["expire_runs"]([pk.run_deadlines], [pk.prefix, limit])
                )
        return expired

    async def unversioned(
        self, limit: int = 1000, *, partitions: Iterable[int] | None = None
    ) -> list[tuple[str, str]]:
        """(run id, workflow) of runs that wait for a machine serving their workflow."""
        found: list[tuple[str, str]] = []
        with redis_errors():
            for pk in self._parts(partitions):
                ids = cast(list[str], await self.redis.zrange(pk.unversioned, 0, limit - 1))
                if not ids:
                    continue
                async with self.redis.pipeline(transaction=False) as pipe:
                    for run_id in ids:
                        pipe.hget(pk.run(run_id), "workflow")
                    names = await pipe.execute()
                found.extend((r, n) for r, n in zip(ids, names, strict=True) if n)
        return found

    # -- queries -------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord:
        pk = self._pk(run_id)
        with redis_errors():
            data = cast(dict[str, str], await self.redis.hgetall(pk.run(run_id)))
        if not data:
            raise NotFound(f"no run {run_id}", details={"id": run_id})
        return RunRecord.from_hash(data)

    async def steps(self, run_id: str) -> dict[int, dict[str, Any]]:
        """Recorded steps by position."""
        pk = self._pk(run_id)
        with redis_errors():
            data = await self.redis.hgetall(pk.steps(run_id))
        return {int(k): orjson.loads(v) for k, v in sorted(data.items(), key=lambda kv: int(kv[0]))}

    async def approvals(self, run_id: str) -> dict[str, dict[str, Any]]:
        pk = self._pk(run_id)
        with redis_errors():
            data = cast(dict[str, str], await self.redis.hgetall(pk.approvals(run_id)))
        return {k: orjson.loads(v) for k, v in data.items()}

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 50,
        cursor: Cursor | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
        parent: str | None = None,
    ) -> tuple[list[RunRecord], Cursor | None]:
        """Newest first, from after ``cursor``; and the next page's cursor (see
        ``index.page``: a page may hold fewer than ``limit`` and still have a next).
        ``parent``: only its child runs, which live in its partition (only that one is
        read)."""
        wanted = tags or {}

        def keep(run_id: str, row: dict[str, str]) -> bool:
            return (
                (status is None or row.get("status") == status)
                and (workflow is None or row.get("workflow") == workflow)
                and (parent is None or row.get("parent") == parent)
                and tags_match(row.get("tags"), wanted)
            )

        partitions = [self._pk(parent)] if parent is not None else self.keys.all_partitions()
        with redis_errors():
            rows, after = await page(
                self.redis,
                [Source(pk.runs, pk.run) for pk in partitions],
                keep,
                limit=limit,
                cursor=cursor,
                created_after_ms=created_after_ms,
                created_before_ms=created_before_ms,
            )
        return [RunRecord.from_hash(row) for _, row in rows], after

    async def timeline(self, run_id: str, limit: int = 1000) -> list[dict[str, str]]:
        """The run's events (its own and its jobs') and its log lines, oldest first."""
        pk = self._pk(run_id)
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xrange(pk.timeline(run_id), count=limit)
                pipe.xrange(pk.logs(run_id), count=limit)
                events, logs = cast(list[list[tuple[str, dict[str, str]]]], await pipe.execute())
        rows = sorted([*events, *logs], key=lambda row: _stream_order(row[0]))[:limit]
        return [{"id": entry_id, **fields} for entry_id, fields in rows]


def _stream_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def served_versions(engine: QueueEngine) -> dict[str, set[int]]:
    """Workflow -> the versions that live machines serve now (from what each machine
    registered with its heartbeats; dead machines leave the list when declared dead)."""
    now_ms = await engine.server_time_ms()
    cutoff = now_ms - 2 * engine.config.machine_dead_after_ms
    served: dict[str, set[int]] = {}
    for machine in await engine.machines():
        if machine["last_heartbeat_ms"] < cutoff:
            continue
        for function in (machine.get("info") or {}).get("functions") or []:
            parsed = parse_activation_function(str(function))
            if parsed is not None:
                served.setdefault(parsed[0], set()).add(parsed[1])
    return served


async def trim_runs_index(
    runs: RunEngine, limit: int = 1000, *, partitions: Iterable[int] | None = None
) -> int:
    """Drop ids of expired runs from the runs index: only ids older than the retention are
    looked at, and only those whose record is gone are removed (a run may wait for
    months; its id stays listed while its record lives)."""
    removed = 0
    with redis_errors():
        seconds, micros = await runs.redis.time()
        cutoff = int(seconds) * 1000 + int(micros) // 1000 - runs.config.retention_ms
        for pk in runs._parts(partitions):
            ids = cast(
                list[str],
                await runs.redis.zrange(pk.runs, "-inf", cutoff, byscore=True, offset=0, num=limit),
            )
            if not ids:
                continue
            async with runs.redis.pipeline(transaction=False) as pipe:
                for run_id in ids:
                    pipe.exists(pk.run(run_id))
                alive = await pipe.execute()
            gone = [r for r, a in zip(ids, alive, strict=True) if not a]
            if gone:
                removed += int(await runs.redis.zrem(pk.runs, *gone))
    return removed
