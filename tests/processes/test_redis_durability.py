"""Restart durability: kill -9 the Redis server in the middle of a stream of transitions,
restart it on the same folder, and find every transition it had acknowledged.

The server runs with ``appendfsync always``, as tether deploys it: Redis writes and
fsyncs each event-loop pass's effects (for a Lua script, the script's writes) to the AOF
*before* it sends that pass's replies, so whatever the client saw acknowledged is on disk.
With ``everysec`` this test passes almost always but not always: when a background fsync
is slow, Redis postpones the AOF write by up to 2 s and replies anyway, and a kill -9 in
that window loses acknowledged writes (we saw it once under load).

What is checked after the restart, for every step the client saw acknowledged: each
enqueued job exists; each claimed job is still leased with its token (or completed, if
the completion was in flight when the server died); each completed job has its result;
and a token handed out after the restart is none of those handed out before it (tokens are
random, so nothing about them can go back). Operations in flight at the moment of the
kill may or may not have happened; they are never half done (each is one script).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tether.errors import RedisUnavailable
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import Outcome
from tether.redis_server import RedisServer, server_binaries

pytestmark = [
    pytest.mark.processes,
    pytest.mark.single_node(reason="kills a Redis server of its own"),
]

BATCH = 20
KILL_AFTER = 2_000  # acknowledged transitions before the kill is triggered


@dataclass
class Acknowledged:
    enqueued: set[str] = field(default_factory=set)
    claimed: dict[str, str] = field(default_factory=dict)  # job id -> token
    completed: dict[str, str] = field(default_factory=dict)  # job id -> result

    @property
    def count(self) -> int:
        return len(self.enqueued) + len(self.claimed) + len(self.completed)


async def drive_until_redis_dies(engine: QueueEngine, kill: threading.Event) -> Acknowledged:
    """Enqueue, claim and complete in batches (and one by one), recording what Redis
    acknowledged, until the server is killed under us."""
    acked = Acknowledged()
    n = 0
    try:
        while True:
            requests = [
                EnqueueRequest("fn", {"n": n + i}, job_id=f"j{n + i}") for i in range(BATCH)
            ]
            n += BATCH
            acked.enqueued.update(e.id for e in await engine.enqueue_many(requests))
            single = await engine.enqueue("fn", {"n": n}, job_id=f"j{n}")
            n += 1
            acked.enqueued.add(single.id)
            jobs = await engine.claim("m1", ["fn"], BATCH)
            acked.claimed.update((job.id, job.token) for job in jobs)
            # Complete all but one, so some jobs stay leased across the crash.
            done = jobs[1:]
            verdicts = await engine.report(
                [Outcome(job.id, job.token, ok=True, result=f"r-{job.id}") for job in done],
                machine="m1",
            )
            assert all(v.accepted for v in verdicts)
            acked.completed.update((job.id, f"r-{job.id}") for job in done)
            if acked.count >= KILL_AFTER:
                kill.set()  # the killer thread strikes while we carry on
    except RedisUnavailable:
        return acked


@pytest.mark.parametrize("binary", server_binaries(), ids=lambda p: p.name)
async def test_every_acknowledged_transition_survives_kill_9_of_redis(
    tmp_path: Path, binary: Path
) -> None:
    server = RedisServer(tmp_path / "data", binary=binary, appendonly=True, appendfsync="always")
    server.start()
    kill = threading.Event()

    def killer() -> None:
        kill.wait(60)
        server.kill()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    keys = Keys(prefix="durable")
    client = Redis.from_url(server.url, decode_responses=True, socket_timeout=5)
    try:
        engine = QueueEngine(client, QueueConfig(keys=keys))
        acked = await drive_until_redis_dies(engine, kill)
        thread.join(10)
        assert kill.is_set(), "the server died before the kill was triggered"
    finally:
        await client.aclose()

    server.start()  # same folder, same port: it loads the AOF
    client = Redis.from_url(server.url, decode_responses=True)
    try:
        engine = QueueEngine(client, QueueConfig(keys=keys))
        records = {
            job_id: record
            for job_id, record in zip(
                sorted(acked.enqueued),
                await engine.get_jobs(sorted(acked.enqueued)),
                strict=True,
            )
        }
        missing = [job_id for job_id, record in records.items() if record is None]
        assert missing == [], f"acknowledged jobs lost: {missing[:10]}"
        for job_id, result in acked.completed.items():
            record = records[job_id]
            assert record is not None
            assert (record.status, record.result) == ("completed", result)
        for job_id, token in acked.claimed.items():
            record = records[job_id]
            assert record is not None
            if job_id not in acked.completed:
                assert record.status in ("running", "completed")
                if record.status == "running":
                    stored = await client.hget(keys.partition(0).job(job_id), "token")
                    assert stored == token
        # A token handed out after the restart is none of those handed out before.
        await engine.enqueue("fn", None, job_id="after-restart")
        fresh = await engine.claim("m2", ["fn"], 10_000)
        assert fresh, "the jobs left queued before the crash are still claimable"
        assert not {job.token for job in fresh} & set(acked.claimed.values())
        assert acked.count >= KILL_AFTER
    finally:
        await client.aclose()
        server.stop()
