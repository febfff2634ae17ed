"""The orchestrator moves what time moves, and replicas never double an effect."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis

from tether.cli.orchestrator import build
from tether.errors import ConfigurationError
from tether.orchestrator.loop import Orchestrator
from tether.orchestrator.runs import run_passes
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine


async def _make_due(redis: Redis, zset: str, member: str) -> None:
    # Rather than sleep, move the member's score into the past.
    await redis.zadd(zset, {member: 0}, xx=True)


async def test_a_tick_promotes_a_delayed_job_that_came_due(
    engine: QueueEngine, redis: Redis
) -> None:
    job = await engine.enqueue("f", 1, delay_ms=60_000)
    await _make_due(redis, engine.keys.for_id(job.id).delayed, job.id)

    done = await Orchestrator(engine).tick()

    assert done["promoted"] == 1
    assert (await engine.get_job(job.id)).status == "queued"


async def test_a_tick_reaps_an_expired_lease_and_requeues_the_job(
    engine: QueueEngine, redis: Redis
) -> None:
    job = await engine.enqueue("f", 1)
    await engine.claim("m1", ["f"], 1)
    await _make_due(redis, engine.keys.for_id(job.id).leases, job.id)

    done = await Orchestrator(engine).tick()

    assert done["reaped"] == 1
    assert (await engine.get_job(job.id)).status == "queued"


async def test_a_tick_declares_a_silent_machine_dead_and_frees_its_jobs(
    engine: QueueEngine, redis: Redis
) -> None:
    job = await engine.enqueue("f", 1)
    await engine.heartbeat("m1")
    await engine.claim("m1", ["f"], 1)
    await _make_due(redis, engine.keys.partition(0).machines, "m1")

    done = await Orchestrator(engine).tick()

    assert done["dead_machines"] == 1
    assert (await engine.get_job(job.id)).status == "queued"
    assert await engine.machines() == []


async def test_two_orchestrators_racing_promote_each_due_job_exactly_once(
    engine: QueueEngine, redis: Redis
) -> None:
    jobs = [await engine.enqueue("f", i, delay_ms=60_000) for i in range(200)]
    delayed = engine.keys.partition(0).delayed
    await redis.zadd(delayed, {j.id: 0 for j in jobs}, xx=True)

    a, b = Orchestrator(engine, batch=7), Orchestrator(engine, batch=7)
    moved = 0
    while moved < len(jobs):
        results = await asyncio.gather(a.promote_delayed(), b.promote_delayed())
        assert any(results), "due jobs remain but neither replica moved any"
        moved += sum(results)

    assert moved == len(jobs)
    assert await engine.queue_depth("f") == len(jobs)


async def test_run_stops_when_asked(engine: QueueEngine) -> None:
    stop = asyncio.Event()
    orchestrator = Orchestrator(engine, interval=0.01)
    task = asyncio.create_task(orchestrator.run(stop))
    while orchestrator.ticks < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert task.done() and task.exception() is None


async def test_the_cli_orchestrator_runs_each_pass_once_per_tick(
    engine: QueueEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: Counter[str] = Counter()
    passes = {
        QueueEngine: ("promote", "reap", "reap_dead_machines"),
        RunEngine: ("wake_timers", "expire_runs", "unversioned"),
    }
    for cls, names in passes.items():
        for name in names:
            original = getattr(cls, name)

            async def counted(
                self: Any, *args: Any, _f: Any = original, _n: str = name, **kwargs: Any
            ) -> Any:
                counts[_n] += 1
                return await _f(self, *args, **kwargs)

            monkeypatch.setattr(cls, name, counted)

    await build(engine, interval=0.1).tick()

    assert counts == {name: 1 for names in passes.values() for name in names}


def test_passing_the_run_passes_again_is_refused(engine: QueueEngine) -> None:
    with pytest.raises(ConfigurationError, match="run_timers"):
        Orchestrator(engine, extra=run_passes(engine))
