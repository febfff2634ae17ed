"""The queue engine: one typed method per Lua transition, plus read-only queries.

Every method that changes state calls exactly one script per job (batches pipeline
several calls in one round trip; each call stays atomic on its own). Redis errors come
out as ``RedisUnavailable`` / ``RedisOutOfMemory``, and a script either ran whole or not
at all, so no transition is ever half done.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.exceptions import NoScriptError

from tether.errors import (
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidTransition,
    LeaseNotHeld,
    NotFound,
    PayloadTooLarge,
    TetherError,
    ValidationFailed,
)
from tether.limits import (
    ID_RULE,
    MAX_CONCURRENCY,
    MAX_EXPIRES,
    MAX_PRIORITY,
    MIN_PRIORITY,
)
from tether.protocol import (
    ACTIVATION_PREFIX,
    ID_PATTERN,
    ErrorInfo,
    FunctionLimits,
    RateLimit,
    idempotency_job_id,
)
from tether.queue.config import QueueConfig
from tether.queue.index import Cursor, Source, page, tags_match
from tether.queue.keys import STICKY_PREFIX, PartitionKeys
from tether.queue.payload import dump_payload
from tether.queue.records import (
    ClaimedJob,
    Enqueued,
    HeartbeatReply,
    JobRecord,
    Outcome,
    PlaneState,
    Verdict,
)
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import load_scripts, register_scripts
from tether.queue.states import JobStatus
from tether.queue.wire import pipelined

# A dict lookup instead of an enum call per job in a batch reply.
_STATUS: dict[str, JobStatus] = {s.value: s for s in JobStatus}

# Lua status codes, mapped once.
OK, MISSING, NOT_HELD, WRONG_STATE, ID_CONFLICT, INPUT_CONFLICT = 1, -1, -2, -3, -4, -5


def check_id(value: str, field: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValidationFailed(
            f"{field} must be {ID_RULE}",
            details={"field": field, "value": str(value)[:200]},
        )
    return value


# Function and workflow names follow the same rule as ids (they end up in key names too).
check_name = check_id


@dataclass(frozen=True, slots=True)
class HandOff:
    """A claim for ``machine``: up to ``count`` ready jobs of ``functions``.
    ``enqueue_and_claim`` makes it in the same round trip as an enqueue, in the partition
    of the first new job of ``function``."""

    machine: str
    functions: Sequence[str]
    count: int
    function: str = ""


@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    function: str
    input: Any = None
    job_id: str | None = None
    idempotency_key: str | None = None
    delay_ms: int = 0
    max_attempts: int | None = None
    timeout_ms: int | None = None
    parent: str | None = None
    tags: dict[str, str] | None = None  # the caller's labels, for listings
    # Not started within this many ms of its enqueue, the job ends expired (0 or less:
    # created expired; None: never expires).
    expires_ms: int | None = None
    # The compact trace context (TraceContext.to_field), stored only when given: without
    # one a job's trace follows from its id (protocol.job_trace), so it costs no field.
    trace: str | None = None
    # Queue features (docs/queue-features.md): claims take higher priorities first; a
    # job with a concurrency key runs only while its key has a free slot (of
    # ``concurrency_limit``, else the function's key limit, else 1).
    priority: int = 0
    concurrency_key: str | None = None
    concurrency_limit: int | None = None


def same_input(stored: str, sent: str) -> bool:
    """Whether two inputs as stored (JSON text) are the same JSON value: keys in another
    order are the same input; ``1`` and ``1.0``, or ``1`` and ``true``, are not."""
    try:
        canonical = [
            orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS) for text in (stored, sent)
        ]
    except orjson.JSONDecodeError:
        return stored == sent
    return canonical[0] == canonical[1]


class QueueEngine:
    """Jobs, leases and heartbeats in Redis."""

    def __init__(self, redis: Client, config: QueueConfig | None = None) -> None:
        self.redis = redis
        self.config = config or QueueConfig()
        self.keys = self.config.keys
        self._scripts = register_scripts(redis)
        self._claim_round = 0

    # -- helpers -------------------------------------------------------------------

    def _parts(self, partitions: Iterable[int] | None) -> list[PartitionKeys]:
        """The keys of ``partitions`` (an orchestrator's share), or of every partition."""
        if partitions is None:
            return self.keys.all_partitions()
        return [self.keys.partition(i) for i in partitions]

    def _indexes(self, partitions: Iterable[int] | None) -> list[int]:
        return list(range(self.keys.partitions)) if partitions is None else list(partitions)

    def _dump(self, value: Any, field: str) -> str:
        return dump_payload(value, field, self.config.max_payload_bytes)

    def _enqueue_args(self, req: EnqueueRequest, random_id: str) -> tuple[str, list[Any]]:
        """Validate a request; returns its job id and its group of enqueue.lua ARGV.
        ``random_id`` is the id it gets if it names none (32 random hex digits)."""
        check_name(req.function, "function")
        if req.parent is not None:
            check_id(req.parent, "parent")
        if req.idempotency_key is not None:
            check_id(req.idempotency_key, "idempotency_key")
        # A random id names no job yet: enqueue.lua skips looking for one.
        fresh = 0
        if req.job_id is not None:
            job_id = check_id(req.job_id, "id")
        else:
            job_id = self.job_id_for(req, random_id)
            fresh = 1 if req.idempotency_key is None else 0
        if req.parent and not job_id.startswith(req.parent + ":"):
            # A run's jobs share its partition: their ids start with the run's id.
            job_id = check_id(f"{req.parent}:{job_id}", "id")
        if req.delay_ms < 0:
            raise ValidationFailed("delay must not be negative", details={"field": "delay"})
        max_attempts = (
            self.config.default_max_attempts if req.max_attempts is None else req.max_attempts
        )
        timeout_ms = self.config.default_timeout_ms if req.timeout_ms is None else req.timeout_ms
        if max_attempts < 1:
            raise ValidationFailed(
                "max_attempts must be at least 1", details={"field": "max_attempts"}
            )
        if timeout_ms < 0:
            raise ValidationFailed("timeout must not be negative", details={"field": "timeout"})
        if req.expires_ms is not None and (
            isinstance(req.expires_ms, bool)
            or not isinstance(req.expires_ms, int)
            or req.expires_ms > MAX_EXPIRES * 1000
        ):
            raise ValidationFailed(
                f"expires must be a whole number of ms up to {MAX_EXPIRES * 1000:.0f}",
                details={"field": "expires"},
            )
        options = self._queue_options(req)
        idem = req.idempotency_key or ""
        if idem and job_id == self.key_id(idem):
            # The job's own record is its idempotency record: its id follows from the
            # key. Only a key whose job has another id needs {t:p}:idem:<key>.
            idem = ""
        group: list[Any] = [
            job_id,
            req.function,
            self._dump(req.input, "input"),
            max_attempts,
            timeout_ms,
            req.delay_ms,
            idem,
            req.parent or "",
            fresh,
            orjson.dumps(req.tags).decode() if req.tags else "",
            "" if req.expires_ms is None else int(req.expires_ms),
            req.trace or "",
            options,
        ]
        return job_id, group

    @staticmethod
    def _queue_options(req: EnqueueRequest) -> str:
        """enqueue.lua's queue options of a job: '' for the plain job (priority 0, no
        concurrency key), else '<priority> <key limit or 0> <key>'."""
        key, limit = req.concurrency_key, req.concurrency_limit
        if req.priority == 0 and key is None and limit is None:
            return ""
        priority = req.priority
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not MIN_PRIORITY <= priority <= MAX_PRIORITY
        ):
            raise ValidationFailed(
                f"priority must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY}",
                details={"field": "priority", "value": str(priority)[:20]},
            )
        if key is not None:
            check_id(key, "concurrency_key")
        if limit is not None:
            if key is None:
                raise ValidationFailed(
                    "concurrency_limit needs a concurrency_key",
                    details={"field": "concurrency_limit"},
                )
            if isinstance(limit, bool) or not 1 <= limit <= MAX_CONCURRENCY:
                raise ValidationFailed(
                    f"concurrency_limit must be from 1 to {MAX_CONCURRENCY}",
                    details={"field": "concurrency_limit", "value": str(limit)[:20]},
                )
        return f"{priority} {limit or 0} {key or ''}"

    @staticmethod
    def job_id_for(req: EnqueueRequest, random_id: str | None = None) -> str:
        """The id enqueueing ``req`` gives its job: its own, the one its idempotency key
        names, or else ``random_id`` or a new random one. Knowing it beforehand lets a
        caller listen for the job's end before the job exists (``POST /v1/jobs?wait``)."""
        if req.job_id is not None:
            return req.job_id
        if req.idempotency_key is not None:
            # The id follows from the key, so the same key always lands in the same
            # partition (where its idempotency record lives) and names the same job.
            return QueueEngine.key_id(req.idempotency_key)
        # 128 random bits, as in uuid4().hex, without building a UUID object.
        return random_id or secrets.token_hex(16)

    @staticmethod
    def key_id(idempotency_key: str) -> str:
        """The id of the job an idempotency key names (the same key, the same id)."""
        return idempotency_job_id(idempotency_key)

    def _enqueued(self, reply: list[Any], req: EnqueueRequest) -> Enqueued:
        function = req.function
        if reply[0] == ID_CONFLICT:
            raise IdempotencyConflict(
                f"job {reply[1]} already exists for function {reply[2]!r}, not {function!r}",
                details={"id": reply[1], "function": reply[2]},
            )
        if reply[0] == INPUT_CONFLICT:
            # Rare (a key reused): the input is written out again to compare it.
            if not same_input(str(reply[3]), self._dump(req.input, "input")):
                named = (
                    f"idempotency key {req.idempotency_key!r}"
                    if req.idempotency_key is not None
                    else f"id {reply[1]!r}"
                )
                raise IdempotencyKeyReused(
                    f"the {named} already names job {reply[1]} of {function!r} with another "
                    "input: use a new key for a new request (the existing job is unchanged)",
                    details={
                        "id": reply[1],
                        "function": function,
                        "status": reply[2],
                        "idempotency_key": req.idempotency_key,
                    },
                )
            # The same value, its keys written in another order: the same request.
            return Enqueued(id=reply[1], status=_STATUS[reply[2]], created=False)
        created = reply[3] == 1
        return Enqueued(
            id=reply[1],
            status=_STATUS[reply[2]],
            created=created,
            enqueued_ms=int(reply[4]) if created and len(reply) > 4 else None,
        )

    async def _pipelined(
        self, calls: Sequence[tuple[str, list[str], list[Any]]], *, raise_errors: bool = True
    ) -> list[Any]:
        """Call scripts by SHA, all in one round trip, each atomic on its own.

        Sent by ``wire.pipelined`` (hiredis packs the arguments: batches of hundreds of
        jobs are thousands of them), without redis-py's SCRIPT EXISTS round trip before
        each batch: a call refused with NOSCRIPT (after a Redis restart or SCRIPT FLUSH)
        ran nothing, so its script is loaded and just those calls are sent again.
        """
        replies = await pipelined(
            self.redis,
            [
                ("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
                for name, keys, args in calls
            ],
        )
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:
            await load_scripts(self.redis)
            again = await self._pipelined([calls[i] for i in missing], raise_errors=False)
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        if raise_errors:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies

    async def load_scripts(self) -> None:
        """Load every script into Redis now (see ``scripts.load_scripts``)."""
        with redis_errors():
            await load_scripts(self.redis)

    # -- transitions ---------------------------------------------------------------

    async def enqueue(
        self,
        function: str,
        input: Any = None,
        *,
        job_id: str | None = None,
        idempotency_key: str | None = None,
        delay_ms: int = 0,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        parent: str | None = None,
        tags: dict[str, str] | None = None,
        expires_ms: int | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        concurrency_limit: int | None = None,
    ) -> Enqueued:
        """Create a job (or return the existing one with this id or idempotency key).
        ``expires_ms``: not started within that many ms, the job ends expired."""
        req = EnqueueRequest(
            function,
            input,
            job_id=job_id,
            idempotency_key=idempotency_key,
            delay_ms=delay_ms,
            max_attempts=max_attempts,
            timeout_ms=timeout_ms,
            parent=parent,
            tags=tags,
            expires_ms=expires_ms,
            priority=priority,
            concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
        )
        return (await self.enqueue_many([req]))[0]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Enqueue several jobs in one round trip; each enqueue is atomic on its own."""
        calls, answers, _ = self._enqueue_calls(requests)
        if not calls:
            return []
        with redis_errors():
            replies = await self._pipelined(calls)
        return self._enqueued_all(requests, answers, replies)

    async def enqueue_and_claim(
        self, requests: Sequence[EnqueueRequest], hand_offs: Sequence[HandOff]
    ) -> tuple[list[Enqueued], list[list[ClaimedJob]]]:
        """Enqueue ``requests`` and make the claims of ``hand_offs`` in the same round
        trip: a job submitted while a long poll waits reaches it with one Redis write
        (one AOF fsync) instead of an enqueue, a notification, then a claim. Each claim
        takes the oldest ready jobs, as any claim does. If the enqueue fails, the jobs
        claimed with it are handed back before the error is raised."""
        calls, answers, partitions = self._enqueue_calls(requests)
        if not calls:
            return [], [[] for _ in hand_offs]
        partition_of: dict[str, int] = {}  # function -> partition of its first new job
        for call, rows in enumerate(answers):
            for index in rows:
                partition_of.setdefault(requests[index].function, partitions[call])
        for h in hand_offs:
            pk = self.keys.partition(partition_of.get(h.function, 0))
            calls.append(self._claim_call(pk, h, require_live=True))
        with redis_errors():
            replies = await self._pipelined(calls, raise_errors=False)
        claimed = [
            [] if isinstance(rows, Exception) else self._claimed(rows, h.machine)
            for h, rows in zip(hand_offs, replies[len(answers) :], strict=True)
        ]
        try:
            for reply in replies[: len(answers)]:
                if isinstance(reply, Exception):
                    with redis_errors():
                        raise reply
            return self._enqueued_all(requests, answers, replies), claimed
        except TetherError:
            for job in (job for jobs in claimed for job in jobs):
                with contextlib.suppress(TetherError):
                    await self.release(job.id, job.token, machine=job.machine)
            raise

    def _enqueue_calls(
        self, requests: Sequence[EnqueueRequest]
    ) -> tuple[list[tuple[str, list[str], list[Any]]], list[list[int]], list[int]]:
        """One enqueue.lua call per partition, which requests each call answers, and
        each call's partition."""
        cfg = self.config
        calls: list[tuple[str, list[str], list[Any]]] = []
        answers: list[list[int]] = []
        partitions: list[int] = []
        by_partition: dict[int, int] = {}  # partition -> its call
        # The random ids of the whole batch from one read of the system's random source.
        randoms = os.urandom(16 * len(requests)).hex()
        for index, request in enumerate(requests):
            job_id, group = self._enqueue_args(request, randoms[32 * index : 32 * index + 32])
            partition = self.keys.partition_of(job_id)
            if partition not in by_partition:
                pk = self.keys.partition(partition)
                by_partition[partition] = len(calls)
                calls.append(
                    (
                        "enqueue",
                        [pk.delayed, pk.jobs],
                        [pk.prefix, cfg.retention_ms, pk.channel, cfg.job_timeline_maxlen],
                    )
                )
                answers.append([])
                partitions.append(partition)
            call = by_partition[partition]
            calls[call][2].extend(group)
            answers[call].append(index)
        return calls, answers, partitions

    def _enqueued_all(
        self, requests: Sequence[EnqueueRequest], answers: list[list[int]], replies: list[Any]
    ) -> list[Enqueued]:
        results: list[Enqueued | None] = [None] * len(requests)
        for call, rows in enumerate(replies[: len(answers)]):
            for index, row in zip(answers[call], rows, strict=True):
                results[index] = self._enqueued(row, requests[index])
        return [r for r in results if r is not None]

    async def claim(
        self,
        machine: str,
        functions: Sequence[str],
        count: int,
        *,
        require_live: bool = False,
    ) -> list[ClaimedJob]:
        """Lease up to ``count`` ready jobs of ``functions`` to ``machine``. With
        ``require_live``, nothing is leased to a machine without a heartbeat record (one
        declared dead, say), so a long poll it left open cannot take jobs away."""
        check_id(machine, "machine")
        if not functions or count <= 0:
            return []
        for fn in functions:
            check_name(fn, "function")
        parts = self.keys.all_partitions()
        start = (self._claim_round + 1) % len(parts)
        if len(parts) > 1:
            return await self._claim_spread(
                machine, functions, count, parts[start:] + parts[:start], require_live
            )
        claimed: list[ClaimedJob] = []
        with redis_errors():
            for pk in parts[start:] + parts[:start]:
                want = count - len(claimed)
                if want <= 0:
                    break
                script, keys, args = self._claim_call(
                    pk, HandOff(machine, functions, want), require_live=require_live
                )
                claimed.extend(self._claimed(await self._scripts[script](keys, args), machine))
        return claimed

    async def _claim_spread(
        self,
        machine: str,
        functions: Sequence[str],
        count: int,
        ordered: list[PartitionKeys],
        require_live: bool,
    ) -> list[ClaimedJob]:
        """A claim across partitions in two round trips (per node, all nodes at once),
        whatever the number of partitions: the depth of every ready queue, then one claim
        per partition that has jobs, for as many as it has (up to ``count`` in all), in
        the rotated order. With nothing ready, that is one round trip, not one per
        partition. A claim that came back short because another machine was quicker
        looks again (twice at most) if other partitions had jobs left over."""
        claimed: list[ClaimedJob] = []
        n = len(functions)
        with redis_errors():
            for _ in range(3):
                # Jobs of other priorities wait on streams of their own, listed in plv:
                # (queue-features.md): their depths are a second round trip, only when
                # some function has levels.
                probes = [
                    probe
                    for pk in ordered
                    for fn in functions
                    for probe in (("XLEN", pk.ready(fn)), ("ZRANGE", pk.levels(fn), "0", "-1"))
                ]
                replies = await pipelined(self.redis, probes)
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
                depths = [int(d) for d in replies[0::2]]
                streams = [
                    (j, pk.level_ready(fn, level))
                    for j, (pk, fn) in enumerate((pk, fn) for pk in ordered for fn in functions)
                    for level in replies[2 * j + 1]
                ]
                if streams:
                    more = await pipelined(self.redis, [("XLEN", key) for _, key in streams])
                    for (j, _), length in zip(streams, more, strict=True):
                        if isinstance(length, Exception):
                            raise length
                        depths[j] += int(length)
                calls: list[tuple[str, list[str], list[Any]]] = []
                left = count - len(claimed)
                spare = 0
                for i, pk in enumerate(ordered):
                    ready = sum(depths[i * n : (i + 1) * n])
                    take = min(ready, left)
                    spare += ready - take
                    if take:
                        left -= take
                        calls.append(
                            self._claim_call(
                                pk, HandOff(machine, functions, take), require_live=require_live
                            )
                        )
                if not calls:
                    break
                asked = count - len(claimed) - left
                got = 0
                for rows in await self._pipelined(calls):
                    jobs = self._claimed(rows, machine)
                    got += len(jobs)
                    claimed.extend(jobs)
                if got == asked or not spare or len(claimed) >= count:
                    break
        return claimed

    def _claim_call(
        self, pk: PartitionKeys, claim: HandOff, *, require_live: bool
    ) -> tuple[str, list[str], list[Any]]:
        self._claim_round += 1
        # Rotate where we start, so no function or partition starves the others.
        # A poll's waiter also waits on its sticky queue (a pseudo-function): it is not a
        # function to claim by name; the flag below reads it.
        functions = [fn for fn in claim.functions if not fn.startswith(STICKY_PREFIX)]
        shift = self._claim_round % len(functions)
        ordered = list(functions[shift:]) + list(functions[:shift])
        keys = [pk.leases, pk.machine_jobs(claim.machine), pk.machines, pk.features, pk.delayed]
        # A machine serving workflows looks at its sticky queue first (runs it keeps in
        # memory, sticky.py); one serving none pays nothing for it.
        sticky = any(fn.startswith(ACTIVATION_PREFIX) for fn in functions)
        if sticky:
            keys.append(pk.sticky_queue(claim.machine))
        keys.extend(pk.ready(fn) for fn in ordered)
        args = [
            pk.prefix,
            claim.machine,
            claim.count,
            self.config.lease_ttl_ms,
            self.config.job_timeline_maxlen,
            1 if require_live else 0,
            # 128 random bits per call, from which the script names each job's token
            # (claim.lua): unguessable by anyone but the machine the reply goes to.
            secrets.token_hex(16),
            self.config.retention_ms,  # for a job past its expiry (expire_job.lua)
            1 if sticky else 0,
        ]
        return "claim", keys, args

    @staticmethod
    def _claimed(rows: list[Any], machine: str) -> list[ClaimedJob]:
        return [
            ClaimedJob(
                id=row[0],
                function=row[1],
                input=orjson.loads(row[2]),
                attempt=int(row[3]),
                max_attempts=int(row[4]),
                token=str(row[5]),
                timeout_ms=int(row[6]),
                parent=row[7] or None,
                machine=machine,
                enqueued_ms=int(row[8]) if len(row) > 8 and row[8] else None,
                trace=row[9] or None if len(row) > 9 else None,
            )
            for row in rows
        ]

    async def heartbeat(
        self, machine: str, info: dict[str, Any] | None = None, held: Iterable[str] = ()
    ) -> HeartbeatReply:
        """Record that ``machine`` is alive and extend the leases of the jobs it ``held``
        (those leased to it that it does not list are left to expire)."""
        check_id(machine, "machine")
        by_partition: dict[int, list[str]] = defaultdict(list)
        for job_id in held:
            by_partition[self.keys.partition_of(job_id)].append(job_id)
        info_json = orjson.dumps(info).decode() if info is not None else ""
        extended, cancelled, lost = 0, [], []
        calls: list[tuple[str, list[str], list[Any]]] = [
            (
                "heartbeat",
                [
                    pk.machines,
                    pk.machine_jobs(machine),
                    pk.leases,
                    pk.cancels(machine),
                    pk.machine(machine),
                ],
                [
                    pk.prefix,
                    machine,
                    self.config.lease_ttl_ms,
                    info_json if index == 0 else "",
                    *by_partition.get(index, []),
                ],
            )
            for index, pk in enumerate(self.keys.all_partitions())
        ]
        with redis_errors():
            replies = await self._pipelined(calls)
        for reply in replies:
            extended += int(reply[0])
            cancelled.extend(reply[1])
            lost.extend(reply[2])
        return HeartbeatReply(extended=extended, cancelled=cancelled, lost=lost)

    async def complete(self, job_id: str, token: str, result: Any = None, *, machine: str) -> None:
        """Commit a result; raises ``LeaseNotHeld`` unless ``machine`` holds the job's
        lease with ``token``."""
        outcome = Outcome(job_id, token, ok=True, result=result)
        verdict = (await self.report([outcome], machine=machine))[0]
        self._raise_for(verdict)

    async def fail(
        self,
        job_id: str,
        token: str,
        error: ErrorInfo,
        *,
        machine: str,
        retryable: bool = True,
        retry_in_ms: int | None = None,
    ) -> str:
        """Record a failed attempt; returns the job's new status. ``retry_in_ms``: retry
        after exactly that long rather than after the backoff."""
        outcome = Outcome(
            job_id, token, ok=False, error=error, retryable=retryable, retry_in_ms=retry_in_ms
        )
        verdict = (await self.report([outcome], machine=machine))[0]
        self._raise_for(verdict)
        return verdict.status

    @staticmethod
    def _raise_for(verdict: Verdict) -> None:
        if verdict.accepted:
            return
        if verdict.reason == "not_found":
            raise NotFound(f"no job {verdict.job_id}", details={"id": verdict.job_id})
        if verdict.reason == "lease_not_held":
            raise LeaseNotHeld(
                f"job {verdict.job_id} is not leased to this machine with this token "
                f"(it is {verdict.status})",
                details={"id": verdict.job_id, "status": verdict.status},
            )
        raise ValidationFailed(verdict.reason or "rejected", details={"id": verdict.job_id})

    async def report(self, outcomes: Sequence[Outcome], *, machine: str) -> list[Verdict]:
        """Commit a batch of results and failures of ``machine`` in one round trip, each
        on its own terms: an item whose lease ``machine`` does not hold with its token
        (stale, forged, another machine's) is rejected and changes nothing."""
        check_id(machine, "machine")
        cfg = self.config
        calls: list[tuple[str, list[str], list[Any]]] = []
        # Which outcomes each call answers: a batch of results per partition, one call
        # per failure (failures are rare; results are the hot path).
        answers: list[list[int]] = []
        completions: dict[int, tuple[int, list[Any]]] = {}  # partition -> (call, ARGV)
        for index, o in enumerate(outcomes):
            partition = self.keys.partition_of(o.job_id)
            pk = self.keys.partition(partition)
            try:
                if o.ok:
                    payload = self._dump(o.result, "result")
                else:
                    err = o.error or ErrorInfo(type="Error", message="unknown error")
                    payload = self._dump(err.model_dump(exclude_none=True), "error")
            except (PayloadTooLarge, ValidationFailed) as exc:
                # The worker's result is unusable: fail the attempt with that reason.
                err = ErrorInfo(type=type(exc).__name__, message=exc.message)
                payload = orjson.dumps(err.model_dump(exclude_none=True)).decode()
                o = Outcome(o.job_id, o.token, ok=False, error=err, retryable=False)
            if o.ok:
                if partition not in completions:
                    args = [
                        pk.prefix,
                        cfg.retention_ms,
                        pk.channel,
                        cfg.job_timeline_maxlen,
                        machine,
                    ]
                    completions[partition] = (len(calls), args)
                    calls.append(("complete", [pk.leases], args))
                    answers.append([])
                call, args = completions[partition]
                args.extend((o.job_id, o.token, payload))
                answers[call].append(index)
            else:
                calls.append(
                    (
                        "fail",
                        [pk.job(o.job_id), pk.leases, pk.delayed],
                        [
                            pk.prefix,
                            o.job_id,
                            o.token,
                            payload,
                            1 if o.retryable else 0,
                            random.random(),
                            cfg.retention_ms,
                            pk.channel,
                            cfg.job_timeline_maxlen,
                            cfg.backoff_ms,
                            cfg.backoff_max_ms,
                            machine,
                            "" if o.retry_in_ms is None else o.retry_in_ms,
                        ],
                    )
                )
                answers.append([index])
        if not calls:
            return []
        with redis_errors():
            replies = await self._pipelined(calls)
        verdicts: list[Verdict | None] = [None] * len(outcomes)
        for call, reply in enumerate(replies):
            rows = reply if calls[call][0] == "complete" else [reply]
            for index, row in zip(answers[call], rows, strict=True):
                job_id = outcomes[index].job_id
                verdicts[index] = self._verdict(job_id, int(row[0]), str(row[1]))
        return [v for v in verdicts if v is not None]

    async def release(self, job_id: str, token: str, *, machine: str) -> str:
        """Hand a leased job back unfinished: ready again at once, attempt not counted."""
        [verdict] = await self.release_many([(job_id, token)], machine=machine)
        self._raise_for(verdict)
        return verdict.status

    async def release_many(
        self, leases: Sequence[tuple[str, str]], *, machine: str
    ) -> list[Verdict]:
        """``release`` of several (job id, token) leases of ``machine`` in one round
        trip, each judged on its own: one it does not hold is refused, that one only."""
        if not leases:
            return []
        check_id(machine, "machine")
        calls = []
        for job_id, token in leases:
            pk = self.keys.for_id(job_id)
            args = [pk.prefix, job_id, token, pk.channel, self.config.job_timeline_maxlen]
            args += [self.config.retention_ms, machine]
            calls.append(("release", [pk.job(job_id), pk.leases], args))
        with redis_errors():
            replies = await self._pipelined(calls)
        return [
            self._verdict(job_id, int(code), str(status))
            for (job_id, _), (code, status) in zip(leases, replies, strict=True)
        ]

    @staticmethod
    def _verdict(job_id: str, code: int, status: str) -> Verdict:
        if code == OK:
            return Verdict(job_id, True, status)
        if code == MISSING:
            return Verdict(job_id, False, "", "not_found")
        return Verdict(job_id, False, status, "lease_not_held")

    async def cancel(self, job_id: str, reason: str = "cancelled by request") -> str:
        """Cancel a job: returns 'cancelled', or 'cancelling' for a running job."""
        check_id(job_id, "id")
        pk = self.keys.for_id(job_id)
        error = orjson.dumps({"type": "Cancelled", "message": reason}).decode()
        with redis_errors():
            code, status = await self._scripts["cancel"](
                [pk.job(job_id), pk.delayed],
                [
                    pk.prefix,
                    job_id,
                    self.config.retention_ms,
                    pk.channel,
                    self.config.job_timeline_maxlen,
                    error,
                ],
            )
        if code == MISSING:
            raise NotFound(f"no job {job_id}", details={"id": job_id})
        if code == WRONG_STATE:
            raise InvalidTransition(
                f"job {job_id} is already {status} and cannot be cancelled",
                details={"id": job_id, "status": status},
            )
        return str(status)

    async def promote(self, limit: int = 1000, *, partitions: Iterable[int] | None = None) -> int:
        """Make due delayed jobs ready, in every partition (or in ``partitions``); returns
        how many moved."""
        moved = 0
        with redis_errors():
            for pk in self._parts(partitions):
                moved += int(
                    await self._scripts["promote"](
                        [pk.delayed],
                        [pk.prefix, limit, pk.channel, self.config.job_timeline_maxlen],
                    )
                )
        return moved

    async def unstick(self, limit: int = 1000, *, partitions: Iterable[int] | None = None) -> int:
        """Activations that waited on a sticky queue past their sticky timeout go to
        their function's queue (any machine), in every partition (or in ``partitions``);
        returns how many."""
        moved = 0
        with redis_errors():
            for pk in self._parts(partitions):
                moved += int(await self._scripts["unstick"]([pk.sticky], [pk.prefix, limit]))
        return moved

    async def expire(
        self, limit: int = 1000, *, partitions: Iterable[int] | None = None
    ) -> list[str]:
        """End the jobs whose ``expires`` time passed before they started, in every
        partition (or in ``partitions``), in one round trip; returns their ids."""
        cfg = self.config
        calls: list[tuple[str, list[str], list[Any]]] = [
            (
                "expire",
                [pk.expiring],
                [pk.prefix, limit, cfg.retention_ms, cfg.job_timeline_maxlen],
            )
            for pk in self._parts(partitions)
        ]
        if not calls:
            return []
        with redis_errors():
            replies = await self._pipelined(calls)
        return [str(job_id) for ids in replies for job_id in ids]

    async def reap(
        self, limit: int = 1000, *, partitions: Iterable[int] | None = None
    ) -> list[tuple[str, str]]:
        """End expired leases (in every partition, or in ``partitions``); returns (job id,
        new status) pairs."""
        reaped: list[tuple[str, str]] = []
        with redis_errors():
            for pk in self._parts(partitions):
                rows = await self._scripts["reap"](
                    [pk.leases, pk.delayed, pk.plane],
                    [
                        pk.prefix,
                        limit,
                        random.random(),
                        self.config.retention_ms,
                        pk.channel,
                        self.config.job_timeline_maxlen,
                        self.config.backoff_ms,
                        self.config.backoff_max_ms,
                        self.config.lease_ttl_ms,
                    ],
                )
                reaped.extend((str(r[0]), str(r[1])) for r in rows)
        return reaped

    async def machine_dead(
        self,
        machine: str,
        cutoff_ms: int | None = None,
        *,
        partitions: Iterable[int] | None = None,
    ) -> list[str] | None:
        """Declare ``machine`` dead if its last heartbeat is at or before ``cutoff_ms``
        (``None``: it is leaving, unconditionally) and release all of its leases (in
        ``partitions`` only, if given: an orchestrator's share).
        Returns the released job ids, or ``None`` if the machine turned out alive."""
        check_id(machine, "machine")
        released: list[str] = []
        declared = False
        cutoff = "+inf" if cutoff_ms is None else str(cutoff_ms)
        with redis_errors():
            for pk in self._parts(partitions):
                found, ids = await self._scripts["machine_dead"](
                    [
                        pk.machines,
                        pk.machine_jobs(machine),
                        pk.leases,
                        pk.delayed,
                        pk.machine(machine),
                        pk.plane,
                        pk.sticky_queue(machine),
                    ],
                    [
                        pk.prefix,
                        machine,
                        cutoff,
                        self.config.retention_ms,
                        pk.channel,
                        self.config.job_timeline_maxlen,
                    ],
                )
                declared = declared or int(found) == 1
                released.extend(ids)
        return released if declared else None

    async def reap_dead_machines(
        self, *, partitions: Iterable[int] | None = None
    ) -> dict[str, list[str]]:
        """Find machines whose heartbeats stopped and release their leases (in every
        partition, or in ``partitions``: each partition is judged, and its leases
        released, by its owner). Nobody is dead while the plane has not heard for
        ``machine_dead_after_ms`` since an outage (``plane_pass``); machine_dead checks
        that again, atomically."""
        now_ms = await self.server_time_ms()
        cutoff = now_ms - self.config.machine_dead_after_ms
        dead: dict[str, list[str]] = {}
        with redis_errors():
            for index, pk in zip(self._indexes(partitions), self._parts(partitions), strict=True):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.hget(pk.plane, "heard")
                    pipe.zrangebyscore(pk.machines, "-inf", cutoff)
                    heard, due = await pipe.execute()
                if int(heard or 0) > cutoff:
                    continue
                for machine in due:
                    # Only here: the other partitions' owners judge it in theirs.
                    only = None if partitions is None else [index]
                    released = await self.machine_dead(machine, cutoff, partitions=only)
                    if released is not None:
                        dead.setdefault(machine, []).extend(released)
        return dead

    async def plane_pass(
        self,
        *,
        begin: bool,
        max_gap_ms: int | None = None,
        partitions: Iterable[int] | None = None,
    ) -> PlaneState:
        """The orchestrator's stamp at the ``begin`` and end of each pass. At the beginning,
        a gap since the last pass ended, or a silence of every API replica, longer than
        ``max_gap_ms`` (default: ``plane_gap_ms``) restarts the clocks of machine deaths and
        lease expiry from now, in every partition (lua/plane_pass.lua). With
        ``partitions`` (an orchestrator's share) only those are stamped: each partition's
        stamps are its owner's passes, so a partition left without an owner for longer
        than the gap (its owner killed, until another takes it over) is an outage of
        that partition alone."""
        limit = self.config.plane_gap_ms if max_gap_ms is None else max_gap_ms
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("plane_pass", [pk.plane, pk.apis], ["begin" if begin else "end", limit])
            for pk in self._parts(partitions)
        ]
        if not calls:
            return PlaneState(0, -1, -1, False)
        with redis_errors():
            replies = await self._pipelined(calls)
        heard = max(int(r[0]) for r in replies)
        since_pass = max(int(r[1]) for r in replies)
        since_api = max(int(r[2]) for r in replies)
        gap = any(int(r[3]) == 1 for r in replies)
        return PlaneState(heard, since_pass, since_api, gap)

    async def api_alive(self, replica: str, forget_after_ms: int = 600_000) -> None:
        """An API replica says it is up, in every partition (one round trip)."""
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("api_alive", [pk.apis], [replica, forget_after_ms])
            for pk in self.keys.all_partitions()
        ]
        with redis_errors():
            await self._pipelined(calls)

    # -- orchestrator shares (tether/orchestrator/shares.py) --------------------------

    async def orchestrator_alive(
        self, replica: str, ttl_ms: int, *, leaving: bool = False
    ) -> list[str]:
        """An orchestrator replica says it is up (or, ``leaving``, that it stops); returns
        the ids of those alive (heard within ``ttl_ms``) in id order."""
        pk0 = self.keys.partition(0)
        args: list[Any] = [replica, ttl_ms, "leave" if leaving else "alive"]
        with redis_errors():
            alive = await self._scripts["orchestrator_alive"]([pk0.orchestrators], args)
        return [str(a) for a in alive]

    async def partition_owners(self) -> list[str | None]:
        """The replica owning each partition's passes (None: nobody), by partition."""
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for pk in self.keys.all_partitions():
                    pipe.get(pk.owner)
                return [None if o is None else str(o) for o in await pipe.execute()]

    async def partition_lease(
        self, replica: str, ttl_ms: int, modes: dict[int, str]
    ) -> dict[int, bool]:
        """Take, keep or drop (``modes``: partition -> 'take' | 'keep' | 'drop') the
        leases of ``replica`` on partitions, one pipelined round trip (per node); returns
        whether it owns each partition afterwards."""
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("partition_lease", [self.keys.partition(p).owner], [replica, ttl_ms, mode])
            for p, mode in modes.items()
        ]
        if not calls:
            return {}
        with redis_errors():
            replies = await self._pipelined(calls)
        return {p: int(r) == 1 for p, r in zip(modes, replies, strict=True)}

    async def trim_index(self, *, partitions: Iterable[int] | None = None) -> int:
        """Drop ids of jobs past their retention from the jobs index."""
        now_ms = await self.server_time_ms()
        removed = 0
        with redis_errors():
            for pk in self._parts(partitions):
                removed += await self.redis.zremrangebyscore(
                    pk.jobs, "-inf", now_ms - self.config.retention_ms
                )
        return removed

    # -- queries -------------------------------------------------------------------

    async def server_time_ms(self) -> int:
        with redis_errors():
            seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def get_job(self, job_id: str) -> JobRecord:
        """A job as stored; a queued job held back by its function's limits says so in
        ``waiting_on`` (a key's limits write it on the job: claim.lua)."""
        check_id(job_id, "id")
        pk = self.keys.for_id(job_id)
        with redis_errors():
            # Whether the partition uses limits at all rides the same round trip: without
            # them (the plain deployment) a queued job costs no second read.
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(pk.job(job_id))
                pipe.exists(pk.features)
                data, has_features = await pipe.execute()
        if not data:
            raise NotFound(f"no job {job_id}", details={"id": job_id})
        record = JobRecord.from_hash(job_id, cast(dict[str, str], data))
        if record.status is JobStatus.QUEUED and record.waiting_on is None and has_features:
            record.waiting_on = await self._function_wait(pk, record.function)
        return record

    async def _function_wait(self, pk: PartitionKeys, function: str) -> dict[str, Any] | None:
        """Why claims skip the queued jobs of ``function`` now, if they do: its
        concurrency slots are all taken, or its rate is spent (the same sums claim.lua
        makes, read without changing anything)."""
        with redis_errors():
            # (TIME stays out of the pipeline: a cluster pipeline refuses keyless commands.)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(pk.features, [f"c/{function}", f"r/{function}"])
                pipe.hget(pk.running, function)
                pipe.get(pk.rate(function))
                (limit, rate), running, tat = await pipe.execute()
        if limit is not None and int(running or 0) >= int(limit):
            return {"kind": "concurrency", "limit": int(limit), "running": int(running or 0)}
        if rate is not None and tat is not None:
            count, period = (int(x) for x in rate.split())
            now = await self.server_time_ms()
            interval = period / count
            if float(tat) + interval > now + period + 1e-6:
                return {
                    "kind": "rate_limit",
                    "limit": count,
                    "period": period / 1000,
                    "until_ms": int(float(tat) + interval - period + 0.999),
                }
        return None

    # -- limits (docs/queue-features.md) ---------------------------------------------

    async def set_limits(self, function: str, limits: FunctionLimits | None) -> None:
        """Set (``None``: clear) the concurrency and rate limits of ``function``, in
        every partition (one script call each, in one round trip)."""
        check_name(function, "function")
        limits = limits or FunctionLimits()

        def rate(r: RateLimit | None) -> str:
            return "" if r is None else f"{r.limit} {max(1, round(r.period * 1000))}"

        values = [
            "" if limits.concurrency is None else str(limits.concurrency),
            "" if limits.key_concurrency is None else str(limits.key_concurrency),
            rate(limits.rate),
            rate(limits.key_rate),
        ]
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("set_limits", [pk.features], [function, *values, pk.channel])
            for pk in self.keys.all_partitions()
        ]
        with redis_errors():
            await self._pipelined(calls)

    async def get_limits(self, function: str) -> FunctionLimits:
        """The limits of ``function`` (all partitions hold the same)."""
        check_name(function, "function")
        fields = [f"{kind}/{function}" for kind in ("c", "k", "r", "kr")]
        with redis_errors():
            c, k, r, kr = cast(
                list[str | None],
                await self.redis.hmget(self.keys.partition(0).features, fields),
            )

        def rate(spec: str | None) -> RateLimit | None:
            if spec is None:
                return None
            count, period = spec.split()
            return RateLimit(limit=int(count), period=int(period) / 1000)

        return FunctionLimits(
            concurrency=int(c) if c is not None else None,
            key_concurrency=int(k) if k is not None else None,
            rate=rate(r),
            key_rate=rate(kr),
        )

    async def running_counts(self, function: str) -> dict[str, int]:
        """Running jobs that hold a concurrency slot of ``function`` (key ``""``) or of
        one of its keys, summed over the partitions."""
        check_name(function, "function")
        counts: dict[str, int] = {}
        with redis_errors():
            for pk in self.keys.all_partitions():
                rows = cast(dict[str, str], await self.redis.hgetall(pk.running))
                for field, value in rows.items():
                    name, _, key = field.partition("/")
                    if name == function:
                        counts[key] = counts.get(key, 0) + int(value)
        return counts

    async def get_jobs(self, job_ids: Sequence[str]) -> list[JobRecord | None]:
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.hgetall(self.keys.for_id(job_id).job(job_id))
                rows = await pipe.execute()
        return [
            JobRecord.from_hash(job_id, r) if r else None
            for job_id, r in zip(job_ids, rows, strict=True)
        ]

    async def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        function: str | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 50,
        cursor: Cursor | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
    ) -> tuple[list[JobRecord], Cursor | None]:
        """Newest first, from after ``cursor``; and the next page's cursor (see
        ``index.page``: a page may hold fewer than ``limit`` and still have a next)."""
        wanted = tags or {}

        def keep(job_id: str, row: dict[str, str]) -> bool:
            return (
                (status is None or row.get("status") == status)
                and (function is None or row.get("fn") == function)
                and tags_match(row.get("tags"), wanted)
            )

        with redis_errors():
            rows, after = await page(
                self.redis,
                [Source(pk.jobs, pk.job) for pk in self.keys.all_partitions()],
                keep,
                limit=limit,
                cursor=cursor,
                created_after_ms=created_after_ms,
                created_before_ms=created_before_ms,
            )
        return [JobRecord.from_hash(job_id, row) for job_id, row in rows], after

    async def timeline(self, owner_id: str, limit: int = 1000) -> list[dict[str, str]]:
        """Events of a job (or a run), oldest first."""
        check_id(owner_id, "id")
        with redis_errors():
            rows = cast(
                list[tuple[str, dict[str, str]]],
                await self.redis.xrange(self.keys.for_id(owner_id).timeline(owner_id), count=limit),
            )
        return [{"id": entry_id, **fields} for entry_id, fields in rows]

    async def machines(self) -> list[dict[str, Any]]:
        """Live machines: last heartbeat, info they registered, and jobs they hold."""
        pk0 = self.keys.partition(0)
        with redis_errors():
            rows = cast(
                list[tuple[str, float]],
                await self.redis.zrange(pk0.machines, 0, -1, withscores=True),
            )
            out: list[dict[str, Any]] = []
            for machine, seen in rows:
                info = await self.redis.hgetall(pk0.machine(machine))
                held = 0
                for pk in self.keys.all_partitions():
                    held += await self.redis.scard(pk.machine_jobs(machine))
                out.append(
                    {
                        "id": machine,
                        "last_heartbeat_ms": int(seen),
                        "info": orjson.loads(info["info"]) if info.get("info") else {},
                        "first_seen_ms": int(info["first_seen"]) if "first_seen" in info else None,
                        "jobs": held,
                    }
                )
        return out

    async def queue_depth(self, function: str) -> int:
        return (await self.queue_depths([function]))[0]

    async def queue_depths(self, functions: Sequence[str]) -> list[int]:
        """Ready jobs of each function, summed over the partitions (and priority levels:
        a second round trip only if some function has levels)."""
        partitions = self.keys.all_partitions()
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for fn in functions:
                    for pk in partitions:
                        pipe.xlen(pk.ready(fn))
                        pipe.zrange(pk.levels(fn), 0, -1)
                replies = await pipe.execute()
            depths = [0] * len(functions)
            streams: list[tuple[int, str]] = []
            n = len(partitions)
            for i, fn in enumerate(functions):
                for j, pk in enumerate(partitions):
                    row = 2 * (i * n + j)
                    depths[i] += int(replies[row])
                    streams.extend((i, pk.level_ready(fn, lv)) for lv in replies[row + 1])
            if streams:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for _, key in streams:
                        pipe.xlen(key)
                    lengths = await pipe.execute()
                for (i, _), length in zip(streams, lengths, strict=True):
                    depths[i] += int(length)
        return depths
