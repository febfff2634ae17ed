"""A stateful property test of the queue engine on a real Redis server.

Hypothesis drives random sequences of enqueue, claim, heartbeat, complete, fail, release,
reap, promote, cancel, expiry and machine death, over two partitions, and after every
step checks:

- each job is in exactly one place: its ready stream (queued), the delayed zset
  (delayed), the leases zset and its machine's job set (running), or nowhere (finished,
  with its retention TTL set);
- an outcome reported with a token other than the job's current one is never committed
  and leaves the job's record exactly as it was (stale tokens come from a bundle of every
  token ever handed out);
- attempts never exceed the maximum; no job disappears;
- every status change is an edge of ``TRANSITIONS`` made by one of the scripts that the
  table names for it;
- and where the outcome is determined, it is the one predicted: a failed attempt becomes
  cancelled / failed / dead / retried (at once after a lost machine or lease, after a
  backoff otherwise), only expired leases are reaped, only due jobs are promoted, a
  dead machine loses all of its leases at once, and a job past its `expires` that never
  started ends expired (by the pass or the claim) while one that started is left alone.

Every mutant of the scripts we tried (token check removed from complete or fail, release
counting the attempt, cancel leaving the stream entry, machine_dead keeping the lease,
reap never treating a timeout as a timeout) fails this test within its example budget.

Time is simulated, never slept: a lease "expires" by moving its score in the leases zset
to 0, a job "times out" by also setting its ``deadline`` field to 1, a delayed job "comes
due" by moving its score to 0, and a machine "goes silent" by moving its last heartbeat to
0, and a job's expiry "comes" by setting its ``expires_at`` to 1 and its expiry entry
to 1. The scripts read Redis's clock, so to them these moments are in the past.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from tether.errors import IdempotencyConflict, InvalidTransition, LeaseNotHeld
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import ErrorInfo, Outcome
from tether.queue.redis_py import redis_client
from tether.queue.states import TERMINAL, TRANSITIONS, JobStatus
from tether.redis_server import RedisServer

T = TypeVar("T")
FUNCTIONS = ["a", "b"]
MACHINES = ["m1", "m2"]
BOOM = ErrorInfo(type="E", message="boom")


@dataclass
class Snapshot:
    """Everything the invariants look at, read in one round trip."""

    records: dict[str, dict[str, str]]
    ttl: dict[str, int]
    ready: Counter[str]  # job id -> number of entries in the ready streams
    delayed: set[str]
    delayed_at: dict[str, float]  # job id -> when it is due
    leased: dict[str, float]  # job id -> lease deadline
    held: dict[str, set[str]]  # machine -> job ids in its job sets

    def status(self, job_id: str) -> str | None:
        return self.records[job_id].get("status")


class QueueModel(RuleBasedStateMachine):
    url: ClassVar[str] = ""

    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis: Redis = redis_client(self.url, decode_responses=True)
        self.keys = Keys(prefix=f"h{uuid.uuid4().hex[:10]}", partitions=2)
        self.engine = QueueEngine(
            self.redis,
            QueueConfig(
                keys=self.keys, backoff_ms=60_000, backoff_max_ms=240_000, lease_ttl_ms=60_000
            ),
        )
        self.max_attempts: dict[str, int] = {}
        self.function: dict[str, str] = {}
        self.key_owner: dict[str, str] = {}  # idempotency key -> function
        self.expiring: set[str] = set()  # jobs enqueued with an expiry
        self.latest: dict[str, str] = {}  # job id -> the token of its latest claim
        self.stale: list[tuple[str, str]] = []  # (job id, token) of superseded claims
        self.claimed_by: dict[str, str] = {}  # token -> the machine it was leased to
        self.cached: Snapshot | None = None
        self.heartbeating: set[str] = set()  # machines seen alive and not declared dead

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    # -- observing ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        ids = list(self.max_attempts)
        parts = self.keys.all_partitions()

        async def read() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self.keys.for_id(job_id).job(job_id))
                    pipe.pttl(self.keys.for_id(job_id).job(job_id))
                for pk in parts:
                    for fn in FUNCTIONS:
                        pipe.xrange(pk.ready(fn))
                    pipe.zrange(pk.delayed, 0, -1, withscores=True)
                    pipe.zrange(pk.leases, 0, -1, withscores=True)
                    for m in MACHINES:
                        pipe.smembers(pk.machine_jobs(m))
                return list(await pipe.execute())

        replies = iter(self.run(read()))
        snap = Snapshot({}, {}, Counter(), set(), {}, {}, {m: set() for m in MACHINES})
        for job_id in ids:
            snap.records[job_id] = dict(next(replies))
            snap.ttl[job_id] = int(next(replies))
        for _ in parts:
            for _ in FUNCTIONS:
                snap.ready.update(fields["id"] for _, fields in next(replies))
            snap.delayed_at.update(dict(next(replies)))
            snap.delayed = set(snap.delayed_at)
            snap.leased.update(dict(next(replies)))
            for m in MACHINES:
                snap.held[m] |= set(next(replies))
        return snap

    def view(self) -> Snapshot:
        """The state as of the last change (read again only after something changed)."""
        if self.cached is None:
            self.cached = self.snapshot()
        return self.cached

    def changed(self) -> None:
        self.cached = None

    def statuses(self) -> dict[str, str | None]:
        snap = self.view()
        return {job_id: snap.status(job_id) for job_id in snap.records}

    def moved_by(self, scripts: set[str], before: dict[str, str | None]) -> None:
        """Every status that changed since ``before`` moved along an edge of the table
        that one of ``scripts`` may make."""
        self.changed()
        after = self.statuses()
        for job_id, old in before.items():
            new = after[job_id]
            if new == old:
                continue
            assert new is not None, f"job {job_id} disappeared"
            edge = (JobStatus(old) if old else None, JobStatus(new))
            assert edge in TRANSITIONS, f"{job_id}: {edge} is not in TRANSITIONS"
            assert TRANSITIONS[edge] & scripts, f"{job_id}: {edge} made by {scripts}"

    def job(self, job_id: str) -> dict[str, str]:
        return dict(self.run(self.redis.hgetall(self.keys.for_id(job_id).job(job_id))))

    # -- rules --------------------------------------------------------------------------

    @initialize(target=jobs)
    def some_jobs(self) -> Any:
        return self.enqueue(
            [
                ("a", False, 3, None, False),
                ("b", False, 2, None, True),
                ("a", False, 1, None, False),
            ]
        )

    @rule(
        target=jobs,
        requests=st.lists(
            st.tuples(
                st.sampled_from(FUNCTIONS),
                st.sampled_from([False, False, True]),  # delayed, one time in three
                st.integers(1, 3),
                st.none() | st.sampled_from(["k1", "k2"]),
                st.booleans(),  # with an expiry (an hour away)
            ),
            min_size=1,
            max_size=2,
        ),
    )
    # A handful of jobs per example: few enough that retried jobs get claimed again
    # (which is what makes superseded tokens), many enough to interleave.
    @precondition(lambda self: len(self.max_attempts) < 6)
    def enqueue(self, requests: list[tuple[str, bool, int, str | None, bool]]) -> Any:
        created = []
        for function, delayed, max_attempts, key, expiring in requests:
            before = self.statuses()
            # Ids are deterministic so that hypothesis can replay an example exactly. A
            # key names one request: its jobs' input is the key's (another input would
            # be refused as a reused key, tests/queue/test_engine_uniqueness.py).
            request = EnqueueRequest(
                function,
                {"key": key} if key else {"n": len(before)},
                job_id=None if key else f"j{len(before)}",
                idempotency_key=key,
                delay_ms=60_000 if delayed else 0,
                max_attempts=max_attempts,
                expires_ms=3_600_000 if expiring else None,
            )
            try:
                enqueued = self.run(self.engine.enqueue_many([request]))[0]
            except IdempotencyConflict:
                assert key is not None and self.key_owner[key] != function
                continue
            if key is not None:
                assert enqueued.created == (key not in self.key_owner)
                self.key_owner.setdefault(key, function)
            if enqueued.created:
                self.max_attempts[enqueued.id] = max_attempts
                self.function[enqueued.id] = function
                if expiring:
                    self.expiring.add(enqueued.id)
                self.moved_by({"enqueue"}, {**before, enqueued.id: None})
                created.append(enqueued.id)
        return multiple(*created)

    @rule(
        machine=st.sampled_from(MACHINES),
        functions=st.lists(st.sampled_from(FUNCTIONS), min_size=1, max_size=2, unique=True),
        count=st.integers(1, 3),
    )
    def claim(self, machine: str, functions: list[str], count: int) -> None:
        snap = self.view()
        before = self.statuses()
        claimed = self.run(self.engine.claim(machine, functions, count))
        assert len(claimed) <= count
        for job in claimed:
            assert before[job.id] == "queued" and self.function[job.id] in functions
            record = snap.records[job.id]
            past_expiry = record.get("expires_at") == "1" and "attempt" not in record
            assert not past_expiry, "a job past its expiry is never handed out"
            assert 1 <= job.attempt <= self.max_attempts[job.id]
        self.moved_by({"claim"}, before)
        for job in claimed:
            if job.id in self.latest:
                self.stale.append((job.id, self.latest[job.id]))
            self.latest[job.id] = job.token
            self.claimed_by[job.token] = machine

    @rule(machine=st.sampled_from(MACHINES), data=st.data())
    def heartbeat(self, machine: str, data: st.DataObject) -> None:
        snap = self.view()
        held = data.draw(st.lists(st.sampled_from([*sorted(snap.records), "unknown"])))
        reply = self.run(self.engine.heartbeat(machine, held=held))
        self.heartbeating.add(machine)
        # Only the leases the machine lists are extended (unlisted ones run out).
        assert reply.extended == sum(1 for job_id in held if job_id in snap.held[machine])
        for job_id in reply.cancelled:
            record = snap.records[job_id]
            assert record["machine"] == machine and record.get("cancel_requested") == "1"
        for job_id in held:
            assert (job_id in reply.lost) == (job_id not in snap.held[machine])
        self.moved_by(set(), {job_id: snap.status(job_id) for job_id in snap.records})

    def after_failure(self, record: dict[str, str], retryable: bool, immediate: bool) -> str:
        """What a job whose attempt ended without a result becomes (retry_or_die.lua)."""
        if record.get("cancel_requested") == "1":
            return "cancelled"
        if not retryable:
            return "failed"
        if int(record.get("attempt", 0)) >= int(record["max_attempts"]):
            return "dead"
        return "queued" if immediate else "delayed"

    def holds(self, record: dict[str, str], token: str, machine: str) -> bool:
        """A lease is (machine, token): both must be the job's current ones."""
        return (
            record.get("status") == "running"
            and record.get("token") == token
            and record.get("machine") == machine
        )

    def report(self, lease: tuple[str, str], outcome: Outcome, script: str, by: str) -> None:
        job_id, token = lease
        record = self.view().records[job_id]
        current = self.holds(record, token, by)
        before = self.statuses()
        verdict = self.run(self.engine.report([outcome], machine=by))[0]
        assert verdict.accepted == current, "only the current lease may commit"
        after = self.job(job_id)
        if not current:
            assert after == record, "a rejected outcome changed the job"
        elif outcome.ok:
            assert (after["status"], after["result"]) == ("completed", f'"{token}"')
        else:
            expected = self.after_failure(record, outcome.retryable, immediate=False)
            assert after["status"] == verdict.status == expected
        self.moved_by({script}, before)

    def release(self, lease: tuple[str, str], by: str) -> None:
        job_id, token = lease
        record = self.view().records[job_id]
        current = self.holds(record, token, by)
        before = self.statuses()
        try:
            status = self.run(self.engine.release(job_id, token, machine=by))
        except LeaseNotHeld:
            assert not current and self.job(job_id) == record
        else:
            assert current
            after = self.job(job_id)
            given_back = status == "queued"  # a released attempt does not count
            assert int(after.get("attempt", 0)) == int(record.get("attempt", 0)) - given_back
            assert status == ("cancelled" if record.get("cancel_requested") else "queued")
        self.moved_by({"release"}, before)

    # Outcomes come with the latest token a job was claimed with (which may have stopped
    # being current: its lease expired, its machine died...) or with a token that a later
    # claim of the same job superseded, which must never commit.
    def latest_lease(self, data: st.DataObject) -> tuple[str, str]:
        return data.draw(st.sampled_from(sorted(self.latest.items())))

    def stale_lease(self, data: st.DataObject) -> tuple[str, str]:
        return data.draw(st.sampled_from(self.stale))

    # The reporter is the machine the token was leased to, or (impostor) another one
    # naming that machine's job and token, which must never commit either.
    def reporter(self, token: str, impostor: str | None) -> str:
        return impostor if impostor is not None else self.claimed_by[token]

    @rule(data=st.data(), stale=st.booleans(), impostor=st.sampled_from([None, *MACHINES]))
    @precondition(lambda self: bool(self.latest))
    def complete(self, data: st.DataObject, stale: bool, impostor: str | None) -> None:
        job_id, token = self.stale_lease(data) if stale and self.stale else self.latest_lease(data)
        outcome = Outcome(job_id, token, ok=True, result=token)
        self.report((job_id, token), outcome, "complete", self.reporter(token, impostor))

    @rule(
        data=st.data(),
        stale=st.booleans(),
        retryable=st.booleans(),
        impostor=st.sampled_from([None, *MACHINES]),
    )
    @precondition(lambda self: bool(self.latest))
    def fail(self, data: st.DataObject, stale: bool, retryable: bool, impostor: str | None) -> None:
        job_id, token = self.stale_lease(data) if stale and self.stale else self.latest_lease(data)
        outcome = Outcome(job_id, token, ok=False, error=BOOM, retryable=retryable)
        self.report((job_id, token), outcome, "fail", self.reporter(token, impostor))

    @rule(data=st.data(), stale=st.booleans(), impostor=st.sampled_from([None, *MACHINES]))
    @precondition(lambda self: bool(self.latest))
    def give_back(self, data: st.DataObject, stale: bool, impostor: str | None) -> None:
        lease = self.stale_lease(data) if stale and self.stale else self.latest_lease(data)
        self.release(lease, self.reporter(lease[1], impostor))

    def end_lease(self, job_id: str, timed_out: bool) -> None:
        """Its machine stopped extending the lease (or the job ran past its timeout)."""
        if self.view().status(job_id) == "running":
            pk = self.keys.for_id(job_id)
            if timed_out:
                self.run(self.redis.hset(pk.job(job_id), "deadline", 1))
            self.run(self.redis.zadd(pk.leases, {job_id: 0}, xx=True))
            self.changed()

    @rule(job_id=jobs, timed_out=st.booleans())
    def expire_lease(self, job_id: str, timed_out: bool) -> None:
        self.end_lease(job_id, timed_out)

    @rule(job_id=jobs, machine=st.sampled_from(MACHINES))
    def taken_over(self, job_id: str, machine: str) -> None:
        """A running job's machine goes quiet and another machine takes the job over: the
        first machine's token is superseded (and will be reported late)."""
        if self.view().status(job_id) == "running":
            self.reap(job_id, "expired")
            self.claim(machine, [self.function[job_id]], len(self.max_attempts))

    @rule(job_id=jobs, how=st.sampled_from(["live", "expired", "timed_out"]))
    def reap(self, job_id: str, how: str) -> None:
        if how != "live":
            self.end_lease(job_id, timed_out=how == "timed_out")
        snap = self.view()
        reaped = dict(self.run(self.engine.reap()))
        # Only leases moved into the past expire: live ones are a minute long. (A lease
        # set to 0 and then heartbeated keeps to its job's deadline: 1 if it timed out.)
        assert set(reaped) == {job_id for job_id, due in snap.leased.items() if due <= 1}
        for job_id, status in reaped.items():
            record = snap.records[job_id]
            timed_out = record.get("deadline") == "1"
            assert status == self.after_failure(record, retryable=True, immediate=not timed_out)
        self.moved_by({"reap"}, {job_id: snap.status(job_id) for job_id in snap.records})

    @rule(job_id=jobs, due=st.booleans())
    def promote(self, job_id: str, due: bool) -> None:
        if due:  # the job's time has come (if it is delayed)
            pk = self.keys.for_id(job_id)
            self.run(self.redis.zadd(pk.delayed, {job_id: 0}, xx=True))
            self.changed()
        snap = self.view()
        self.run(self.engine.promote())
        self.moved_by({"promote"}, {job_id: snap.status(job_id) for job_id in snap.records})
        # Backoffs and delays are a minute or more: only what we moved is due.
        for delayed_id, due_at in snap.delayed_at.items():
            expected = "queued" if due_at == 0 else "delayed"
            assert self.view().status(delayed_id) == expected

    @rule(job_id=jobs, by_claim=st.booleans())
    def expiry_comes(self, job_id: str, by_claim: bool) -> None:
        """The job's `expires` time passes; the pass (or a claim) ends it if it never
        started, and leaves it as it is otherwise."""
        if job_id not in self.expiring:
            return
        pk = self.keys.for_id(job_id)
        self.run(self.redis.hset(pk.job(job_id), "expires_at", 1))
        self.run(self.redis.zadd(pk.expiring, {job_id: 1}, xx=True))
        self.changed()
        record = self.view().records[job_id]
        if by_claim:
            self.claim(MACHINES[0], [self.function[job_id]], len(self.max_attempts))
            if record["status"] != "queued":
                return
        else:
            before = self.statuses()
            expired = self.run(self.engine.expire())
            self.moved_by({"expire"}, before)
            never_started = "attempt" not in record
            assert (job_id in expired) == (
                never_started and record["status"] in ("queued", "delayed")
            )
        if "attempt" not in record and record["status"] in ("queued", "delayed"):
            if by_claim and record["status"] == "delayed":
                return  # a claim does not see a delayed job
            assert self.job(job_id)["status"] == "expired"

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        before = self.statuses()
        try:
            answer = self.run(self.engine.cancel(job_id))
        except InvalidTransition:
            assert JobStatus(before[job_id]) in TERMINAL
            return
        assert answer == ("cancelling" if before[job_id] == "running" else "cancelled")
        self.moved_by({"cancel"}, before)

    @rule(machine=st.sampled_from(MACHINES), leaving=st.booleans())
    def machine_dies(self, machine: str, leaving: bool) -> None:
        snap = self.view()
        before = {job_id: snap.status(job_id) for job_id in snap.records}
        if leaving:
            released = self.run(self.engine.machine_dead(machine)) or []
        else:
            for pk in self.keys.all_partitions():
                self.run(self.redis.zadd(pk.machines, {machine: 0}, xx=True))
            released = self.run(self.engine.reap_dead_machines()).get(machine, [])
        declared = leaving or machine in self.heartbeating
        self.heartbeating.discard(machine)
        held = snap.held[machine] if declared else set()
        assert set(released) == held, "all of its leases are released at once"
        for job_id in released:
            expected = self.after_failure(snap.records[job_id], retryable=True, immediate=True)
            assert self.job(job_id)["status"] == expected
        self.moved_by({"machine_dead"}, before)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def each_job_is_in_exactly_one_place_and_within_its_attempts(self) -> None:
        snap = self.view()
        known = set(snap.records)
        assert set(snap.ready) | snap.delayed | set(snap.leased) <= known
        for job_id, record in snap.records.items():
            assert record, f"job {job_id} disappeared"
            assert 0 <= int(record.get("attempt", 0)) <= self.max_attempts[job_id]
            status = JobStatus(record["status"])
            place = (snap.ready[job_id], job_id in snap.delayed, job_id in snap.leased)
            holders = {m for m, ids in snap.held.items() if job_id in ids}
            if status is JobStatus.QUEUED:
                assert place == (1, False, False)
            elif status is JobStatus.DELAYED:
                assert place == (0, True, False)
            elif status is JobStatus.RUNNING:
                assert place == (0, False, True)
                assert holders == {record["machine"]} and record.get("token")
            else:
                assert place == (0, False, False)
                assert snap.ttl[job_id] > 0, "a finished job keeps its retention TTL"
            if status is not JobStatus.RUNNING:
                assert not holders, f"{job_id} is {status} but a machine holds it"


@pytest.fixture
def model(redis_server: RedisServer) -> Iterator[type[QueueModel]]:
    QueueModel.url = redis_server.url
    yield QueueModel


def test_queue_engine_keeps_its_invariants_under_random_operations(
    model: type[QueueModel],
) -> None:
    run_state_machine_as_test(
        model,
        settings=settings(
            max_examples=80,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
