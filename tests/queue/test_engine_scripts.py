"""The Lua scripts against their contract: documented headers, keys built in one place,
and job states moved only along the edges of ``TRANSITIONS``."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from queue_helpers import (
    claim_one,
    expire_lease,
    make_due,
    pass_expiry,
    pass_timeout,
    silence_machine,
)
from redis.asyncio import Redis

from tether.protocol import FunctionLimits, RateLimit
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import ErrorInfo
from tether.queue.scripts import LUA_DIR, SCRIPT_NAMES
from tether.queue.states import TRANSITIONS, JobStatus

BOOM = ErrorInfo(type="E", message="boom")


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_script_documents_each_key_and_argument_it_uses(name: str) -> None:
    source = (LUA_DIR / f"{name}.lua").read_text()
    assert source.startswith(f"--[[ {name}:"), "a script opens with '--[[ <name>: what it does'"
    header, body = source.split("]]", 1)
    assert "Returns" in header
    for kind in ("KEYS", "ARGV"):
        documented = {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", header)}
        open_ended = {int(n) for n in re.findall(rf"{kind}\[(\d+)\.\.\]", header)}
        for used in {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", body)}:
            assert used in documented or any(used >= n for n in open_ended), (
                f"{name}.lua uses {kind}[{used}] without documenting it"
            )
        for n in documented:
            assert re.search(rf"{kind}\[{n}\]", body), f"{name}.lua documents unused {kind}[{n}]"


@pytest.mark.parametrize(
    "path",
    sorted(p for p in LUA_DIR.rglob("*.lua") if not p.name.endswith("keys.lua")),
    ids=lambda p: p.name,
)
def test_key_names_are_built_only_by_the_keys_include(path: object) -> None:
    from pathlib import Path

    text = Path(str(path)).read_text()
    assert not re.search(r"\bp\s*\.\.\s*'", text), "build key names with includes/keys.lua"


async def test_lua_key_helpers_match_the_python_key_builder(redis: Redis, keys: Keys) -> None:
    pk = keys.partition(0)
    source = (LUA_DIR / "includes" / "keys.lua").read_text() + (
        "\nreturn {job_key(ARGV[1], 'j'), queue_key(ARGV[1], 'f'), timeline_key(ARGV[1], 'j'),"
        " machine_jobs_key(ARGV[1], 'm'), cancels_key(ARGV[1], 'm'),"
        " idempotency_key(ARGV[1], 'k'), feature_key(ARGV[1], 'fx'), expiring_key(ARGV[1]),"
        " feature_key(ARGV[1], 'plv', 'f'), feature_key(ARGV[1], 'pq', 'f', '-3'),"
        " feature_key(ARGV[1], 'running'), feature_key(ARGV[1], 'kwait', 'f', 'k'),"
        " feature_key(ARGV[1], 'rate', 'f'), feature_key(ARGV[1], 'rate', 'f', 'k')}"
    )

    built = await redis.eval(source, 0, pk.prefix)  # type: ignore[misc]

    assert built == [
        pk.job("j"),
        pk.ready("f"),
        pk.timeline("j"),
        pk.machine_jobs("m"),
        pk.cancels("m"),
        pk.idempotency("k"),
        pk.features,
        pk.expiring,
        pk.levels("f"),
        pk.level_ready("f", -3),
        pk.running,
        pk.parked("f", "k"),
        pk.rate("f"),
        pk.rate("f", "k"),
    ]


# -- every edge of TRANSITIONS, driven by its script -------------------------------------

Action = Callable[[], Awaitable[object]]
Setup = Callable[[QueueEngine, Redis], Awaitable[tuple[str, Action]]]
EDGES: dict[tuple[JobStatus | None, JobStatus, str], Setup] = {}
Q, D, R = JobStatus.QUEUED, JobStatus.DELAYED, JobStatus.RUNNING


def edge(source: JobStatus | None, target: JobStatus, script: str) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        EDGES[(source, target, script)] = setup
        return setup

    return register


async def running(engine: QueueEngine, max_attempts: int = 3, cancel: bool = False) -> str:
    await engine.enqueue("fn", None, job_id="j", max_attempts=max_attempts)
    job = await claim_one(engine)
    await engine.heartbeat("m1")
    if cancel:
        await engine.cancel(job.id)
    return job.token


@edge(None, Q, "enqueue")
async def enqueue_queued(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    return "j", lambda: engine.enqueue("fn", None, job_id="j")


@edge(None, D, "enqueue")
async def enqueue_delayed(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    return "j", lambda: engine.enqueue("fn", None, job_id="j", delay_ms=10_000)


@edge(None, JobStatus.EXPIRED, "enqueue")
async def enqueue_already_expired(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    return "j", lambda: engine.enqueue("fn", None, job_id="j", expires_ms=0)


@edge(Q, JobStatus.EXPIRED, "expire")
async def expire_queued(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j", expires_ms=60_000)
    await pass_expiry(redis, engine, "j")
    return "j", engine.expire


@edge(D, JobStatus.EXPIRED, "expire")
async def expire_delayed(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j", delay_ms=120_000, expires_ms=60_000)
    await pass_expiry(redis, engine, "j")
    return "j", engine.expire


@edge(Q, JobStatus.EXPIRED, "claim")
async def claim_past_expiry(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j", expires_ms=60_000)
    await pass_expiry(redis, engine, "j")
    return "j", lambda: engine.claim("m1", ["fn"], 1)


@edge(Q, R, "claim")
async def claim(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j")
    return "j", lambda: engine.claim("m1", ["fn"], 1)


@edge(Q, D, "claim")
async def claim_rate_limited(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.set_limits("fn", FunctionLimits(key_rate=RateLimit(limit=1, period=60)))
    await engine.enqueue("fn", None, job_id="first", concurrency_key="k", concurrency_limit=9)
    await engine.claim("m1", ["fn"], 1)
    await engine.enqueue("fn", None, job_id="j", concurrency_key="k", concurrency_limit=9)
    return "j", lambda: engine.claim("m1", ["fn"], 1)


@edge(Q, JobStatus.CANCELLED, "cancel")
async def cancel_queued(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j")
    return "j", lambda: engine.cancel("j")


@edge(D, JobStatus.CANCELLED, "cancel")
async def cancel_delayed(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j", delay_ms=10_000)
    return "j", lambda: engine.cancel("j")


@edge(D, Q, "promote")
async def promote(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await engine.enqueue("fn", None, job_id="j", delay_ms=10_000)
    await make_due(redis, engine, "j")
    return "j", engine.promote


@edge(R, JobStatus.COMPLETED, "complete")
async def complete(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine)
    return "j", lambda: engine.complete("j", token, 1, machine="m1")


@edge(R, D, "fail")
async def fail_retry(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine)
    return "j", lambda: engine.fail("j", token, BOOM, machine="m1")


@edge(R, JobStatus.FAILED, "fail")
async def fail_final(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine)
    return "j", lambda: engine.fail("j", token, BOOM, machine="m1", retryable=False)


@edge(R, JobStatus.DEAD, "fail")
async def fail_dead(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine, max_attempts=1)
    return "j", lambda: engine.fail("j", token, BOOM, machine="m1")


@edge(R, JobStatus.CANCELLED, "fail")
async def fail_cancelled(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine, cancel=True)
    return "j", lambda: engine.fail("j", token, BOOM, machine="m1")


@edge(R, D, "reap")
async def reap_timeout(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine)
    await pass_timeout(redis, engine, "j")
    return "j", engine.reap


@edge(R, Q, "reap")
async def reap_expired(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine)
    await expire_lease(redis, engine, "j")
    return "j", engine.reap


@edge(R, JobStatus.DEAD, "reap")
async def reap_dead(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine, max_attempts=1)
    await expire_lease(redis, engine, "j")
    return "j", engine.reap


@edge(R, JobStatus.CANCELLED, "reap")
async def reap_cancelled(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine, cancel=True)
    await expire_lease(redis, engine, "j")
    return "j", engine.reap


@edge(R, Q, "release")
async def release(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine)
    return "j", lambda: engine.release("j", token, machine="m1")


@edge(R, JobStatus.CANCELLED, "release")
async def release_cancelled(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    token = await running(engine, cancel=True)
    return "j", lambda: engine.release("j", token, machine="m1")


@edge(R, Q, "machine_dead")
async def machine_dead(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine)
    await silence_machine(redis, engine, "m1")
    return "j", engine.reap_dead_machines


@edge(R, JobStatus.DEAD, "machine_dead")
async def machine_dead_last_attempt(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine, max_attempts=1)
    await silence_machine(redis, engine, "m1")
    return "j", engine.reap_dead_machines


@edge(R, JobStatus.CANCELLED, "machine_dead")
async def machine_dead_cancelled(engine: QueueEngine, redis: Redis) -> tuple[str, Action]:
    await running(engine, cancel=True)
    await silence_machine(redis, engine, "m1")
    return "j", engine.reap_dead_machines


def test_every_edge_of_the_transition_table_has_a_driver_and_no_more() -> None:
    table = {(s, t, script) for (s, t), scripts in TRANSITIONS.items() for script in scripts}
    # The jobs that runs create and cancel are driven in test_run_transitions.py.
    from test_run_transitions import JOB_EDGES

    assert set(EDGES) | set(JOB_EDGES) == table
    assert not set(EDGES) & set(JOB_EDGES)


@pytest.mark.parametrize(
    ("source", "target", "script"), list(EDGES), ids=[f"{s}-{t}-{n}" for s, t, n in EDGES]
)
async def test_each_script_makes_the_move_the_table_names(
    engine: QueueEngine,
    redis: Redis,
    source: JobStatus | None,
    target: JobStatus,
    script: str,
) -> None:
    job_id, action = await EDGES[(source, target, script)](engine, redis)
    key = engine.keys.for_id(job_id).job(job_id)
    before = await redis.hget(key, "status")
    assert before == (source.value if source else None)

    await action()

    assert await redis.hget(key, "status") == target.value
    last = (await engine.timeline(job_id))[-1]
    assert last["prev"] == (source.value if source else "")
