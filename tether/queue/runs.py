"""The run engine: workflow runs, their step records and waits, in Redis.

One typed method per Lua transition (``lua/*_run.lua``, ``record_step``, ...), next to
the queue engine it builds on: a run's activations and child calls are ordinary jobs
(``<run>:a<n>`` on ``wf:<workflow>@<version>``, ``<run>:c<position>``) whose parent is the
run, so they live in the run's partition and their scripts can update the run in the same
atomic step (see ``lua/includes/run_job_finished.lua``).

Run states::

    queued -> running -> completed | failed | cancelled
    running -> waiting -> queued          (children, timer, approval, signal, retry)
    failed -> queued                      (retry from the failed step)
    queued | waiting -> cancelled | failed (workflow timeout)
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from tether.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidTransition,
    LeaseNotHeld,
    NotFound,
    ValidationFailed,
)
from tether.queue.config import QueueConfig
from tether.queue.engine import (
    ID_CONFLICT,
    MISSING,
    NOT_HELD,
    OK,
    WRONG_STATE,
    QueueEngine,
    check_id,
    check_name,
)
from tether.queue.index import newest_records
from tether.queue.keys import PartitionKeys
from tether.queue.payload import dump_payload
from tether.queue.records import ErrorInfo
from tether.queue.redis_errors import redis_errors
from tether.queue.scripts import register_scripts

# Reply codes of the run scripts beyond those of the job scripts (engine.py).
OTHER_STEP, DECIDED = -5, -6

ACTIVATION_PREFIX = "wf:"


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
        )


@dataclass(frozen=True, slots=True)
class Started:
    id: str
    status: RunStatus
    created: bool
    version: int | None


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


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A child job to start as the step at ``position``."""

    position: int
    function: str
    input: Any = None
    max_attempts: int | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """What a suspended run waits on.

    ``kind`` children: ``positions`` (child steps); sleep: ``position``, ``name``,
    ``ms`` (duration); approval: ``position``, ``name`` (the key), ``ms`` (timeout or
    None), ``info`` (prompt, data); signal: ``position``, ``name``, ``ms`` (timeout).
    """

    kind: str
    position: int | None = None
    name: str = ""
    ms: int | None = None
    positions: tuple[int, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def waiting_on(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"kind": self.kind}
        if self.kind == "children":
            shown["positions"] = list(self.positions)
        else:
            shown["position"] = self.position
            shown["key" if self.kind == "approval" else "name"] = self.name
        shown.update(self.info)
        return shown


WAIT_KINDS = frozenset({"children", "sleep", "approval", "signal"})


class RunEngine:
    """Workflow runs in Redis: one method per transition, plus queries."""

    def __init__(self, redis: Redis, config: QueueConfig | None = None) -> None:
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
    ) -> Started:
        """Create a run (or return the one with this id). ``version`` None: the run
        waits until a machine serving the workflow is known (see ``assign_version``)."""
        check_name(workflow, "workflow")
        run_id = check_id(run_id, "id") if run_id else uuid.uuid4().hex
        if version is not None and version < 1:
            raise ValidationFailed("version must be at least 1", details={"field": "version"})
        pk = self.keys.for_id(run_id)
        with redis_errors():
            reply = await self._scripts["start_run"](
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
                ],
            )
        if int(reply[0]) == ID_CONFLICT:
            raise IdempotencyConflict(
                f"run {run_id} already exists for workflow {reply[1]!r}, not {workflow!r}",
                details={"id": run_id, "workflow": reply[1]},
            )
        return Started(
            run_id, RunStatus(reply[1]), int(reply[2]) == 1, int(reply[3]) if reply[3] else None
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
    ) -> ActivationState:
        """Start replaying: the run becomes running; returns input and recorded steps."""
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
        failed_position: int | None = None,
        retryable: bool = True,
        logs: Sequence[dict[str, Any]] = (),
    ) -> str:
        """The workflow raised: 'waiting' (a retry is scheduled) or 'failed'."""
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
                    "" if failed_position is None else failed_position,
                    1 if retryable else 0,
                    int(backoff * (0.5 + random.random() / 2)),
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
    ) -> str:
        """End the activation until ``wait`` is satisfied: 'waiting', or 'queued' when it
        already is (the next activation is queued at once)."""
        if wait.kind not in WAIT_KINDS:
            raise ValidationFailed(f"unknown wait kind {wait.kind!r}", details={"field": "kind"})
        if wait.kind != "children" and (wait.position is None or not wait.name):
            raise ValidationFailed(
                f"a {wait.kind} wait needs a position and a name", details={"field": "position"}
            )
        if wait.kind == "sleep" and wait.ms is None:
            raise ValidationFailed("a sleep needs a duration", details={"field": "ms"})
        pk = self._pk(run_id)
        child_args: list[Any] = []
        for child in children:
            check_name(child.function, "function")
            child_args += [
                child.position,
                child.function,
                self._dump(child.input, "input"),
                child.max_attempts or self.config.default_max_attempts,
                self.config.default_timeout_ms if child.timeout_ms is None else child.timeout_ms,
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
                    "" if wait.position is None else wait.position,
                    wait.name,
                    "" if wait.ms is None else max(0, wait.ms),
                    ",".join(str(p) for p in wait.positions),
                    self.config.backoff_ms,
                    self.config.backoff_max_ms,
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

    async def wake_timers(self, limit: int = 1000) -> int:
        """Wake runs whose timer is due, in every partition; returns how many."""
        woken = 0
        with redis_errors():
            for pk in self.keys.all_partitions():
                woken += int(await self._scripts["wake_timers"]([pk.timers], [pk.prefix, limit]))
        return woken

    async def expire_runs(self, limit: int = 1000) -> int:
        """Fail runs past their workflow-level timeout; returns how many."""
        expired = 0
        with redis_errors():
            for pk in self.keys.all_partitions():
                expired += int(
                    await self._scripts["expire_runs"]([pk.run_deadlines], [pk.prefix, limit])
                )
        return expired

    async def unversioned(self, limit: int = 1000) -> list[tuple[str, str]]:
        """(run id, workflow) of runs that wait for a machine serving their workflow."""
        found: list[tuple[str, str]] = []
        with redis_errors():
            for pk in self.keys.all_partitions():
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
        limit: int = 50,
        before_ms: int | None = None,
    ) -> list[RunRecord]:
        """Newest first; filters apply to the records read (scans at most 20x limit)."""
        found: list[RunRecord] = []
        with redis_errors():
            for pk in self.keys.all_partitions():
                rows = await newest_records(
                    self.redis, pk.runs, pk.run, limit=limit, before_ms=before_ms
                )
                for record in (RunRecord.from_hash(row) for _, row in rows):
                    if status is not None and record.status != status:
                        continue
                    if workflow is not None and record.workflow != workflow:
                        continue
                    found.append(record)
        found.sort(key=lambda r: r.created_at or 0, reverse=True)
        return found[:limit]

    async def timeline(self, run_id: str, limit: int = 1000) -> list[dict[str, str]]:
        """The run's events (its own and its jobs'), oldest first."""
        pk = self._pk(run_id)
        with redis_errors():
            rows = cast(
                list[tuple[str, dict[str, str]]],
                await self.redis.xrange(pk.timeline(run_id), count=limit),
            )
        return [{"id": entry_id, **fields} for entry_id, fields in rows]


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


async def trim_runs_index(runs: RunEngine, limit: int = 1000) -> int:
    """Drop ids of expired runs from the runs index: only ids older than the retention are
    looked at, and only those whose record is gone are removed (a run may wait for
    months; its id stays listed while its record lives)."""
    removed = 0
    with redis_errors():
        seconds, micros = await runs.redis.time()
        cutoff = int(seconds) * 1000 + int(micros) // 1000 - runs.config.retention_ms
        for pk in runs.keys.all_partitions():
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
