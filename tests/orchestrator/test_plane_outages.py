"""An outage of the control plane is not blamed on the machines: while the orchestrators'
passes stopped (they were down, or Redis was) or every API replica was silent, no
heartbeat could arrive, so nobody is declared dead and no lease expires for it; once the
plane is whole again, a machine that stays silent is dead within the usual bound.

Timings are shrunk (300 ms to die, 100 ms of gap) so the tests run in real time."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from tether.orchestrator.loop import Orchestrator
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys

DEAD_AFTER_MS = 300
GAP_MS = 100


@pytest.fixture
def engine(redis: Redis, keys: Keys) -> QueueEngine:
    config = QueueConfig(
        keys=keys,
        machine_dead_after_ms=DEAD_AFTER_MS,
        lease_ttl_ms=DEAD_AFTER_MS,
        plane_gap_ms=GAP_MS,
    )
    return QueueEngine(redis, config)


@pytest.fixture
def orchestrator(engine: QueueEngine) -> Orchestrator:
    return Orchestrator(engine, interval=0.01)


async def running_job(engine: QueueEngine, machine: str = "m1") -> str:
    await engine.heartbeat(machine)
    job = await engine.enqueue("f", None)
    [claimed] = await engine.claim(machine, ["f"], 1)
    assert claimed.id == job.id
    return job.id


async def tick_for(orchestrator: Orchestrator, seconds: float) -> dict[str, int]:
    """Passes every 10 ms for ``seconds``; what they moved, summed."""
    moved: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, count in (await orchestrator.tick()).items():
            moved[name] = moved.get(name, 0) + count
        await asyncio.sleep(0.01)
    return moved


async def until_dead(orchestrator: Orchestrator, machine: str, limit: float) -> float:
    """Seconds of passes until ``machine`` is declared dead."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        await orchestrator.tick()
        if machine not in {m["id"] for m in await orchestrator.engine.machines()}:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"{machine} was not declared dead within {limit} s")


async def test_no_machine_dies_and_no_lease_ends_for_a_pause_of_every_orchestrator(
    engine: QueueEngine, orchestrator: Orchestrator
) -> None:
    await orchestrator.tick()
    job_id = await running_job(engine)

    await asyncio.sleep(3 * DEAD_AFTER_MS / 1000)  # no pass: the orchestrators are away
    moved = await orchestrator.tick()

    assert orchestrator.outage
    assert (moved["dead_machines"], moved["reaped"]) == (0, 0)
    assert (await engine.get_job(job_id)).status == "running"


async def test_a_machine_alive_after_the_gap_keeps_its_job(
    engine: QueueEngine, orchestrator: Orchestrator
) -> None:
    await orchestrator.tick()
    job_id = await running_job(engine)
    await asyncio.sleep(3 * DEAD_AFTER_MS / 1000)

    await orchestrator.tick()  # the plane is back; the machine's heartbeats resume
    moved: dict[str, int] = {}
    for _ in range(6):
        await engine.heartbeat("m1", held=[job_id])
        for name, count in (await tick_for(orchestrator, 0.1)).items():
            moved[name] = moved.get(name, 0) + count

    assert (moved["dead_machines"], moved["reaped"]) == (0, 0)
    assert (await engine.get_job(job_id)).status == "running"


async def test_a_machine_silent_after_the_gap_is_dead_within_the_usual_bound(
    engine: QueueEngine, orchestrator: Orchestrator
) -> None:
    await orchestrator.tick()
    job_id = await running_job(engine)
    await asyncio.sleep(3 * DEAD_AFTER_MS / 1000)

    waited = await until_dead(orchestrator, "m1", limit=5)

    # Its silence counts from the plane's return, no earlier and not much later.
    assert DEAD_AFTER_MS / 1000 - 0.05 <= waited <= DEAD_AFTER_MS / 1000 + 0.3
    assert (await engine.get_job(job_id)).status == "queued"


async def test_no_machine_dies_while_every_api_replica_is_silent(
    engine: QueueEngine, orchestrator: Orchestrator
) -> None:
    await engine.api_alive("api-1")
    await orchestrator.tick()
    job_id = await running_job(engine)

    # The only API replica stops (no more signs of life, no more heartbeats) while the
    # orchestrator keeps passing, for three times as long as a machine may stay silent.
    moved = await tick_for(orchestrator, 3 * DEAD_AFTER_MS / 1000)

    assert orchestrator.outage
    assert (moved["dead_machines"], moved["reaped"]) == (0, 0)
    assert (await engine.get_job(job_id)).status == "running"

    keeper = asyncio.create_task(replica_up(engine, "api-1"))  # back; the machine stays
    try:  # silent: it is dead, counting from the replica's return
        waited = await until_dead(orchestrator, "m1", limit=5)
    finally:
        keeper.cancel()
    assert waited <= DEAD_AFTER_MS / 1000 + 0.3
    assert not orchestrator.outage


async def replica_up(engine: QueueEngine, replica: str) -> None:
    """What a running API replica does (tether/api/liveness.py)."""
    while True:
        await engine.api_alive(replica)
        await asyncio.sleep(GAP_MS / 4000)


async def test_one_api_replica_up_is_no_outage(
    engine: QueueEngine, orchestrator: Orchestrator
) -> None:
    await engine.api_alive("api-gone")  # a replica that stopped for good
    await orchestrator.tick()
    await running_job(engine)

    keeper = asyncio.create_task(replica_up(engine, "api-2"))
    try:
        waited = await until_dead(orchestrator, "m1", limit=5)
    finally:
        keeper.cancel()
    assert waited <= DEAD_AFTER_MS / 1000 + 0.2
    assert not orchestrator.outage


async def test_an_engine_without_any_api_is_never_taken_for_an_outage(
    engine: QueueEngine, orchestrator: Orchestrator
) -> None:
    await orchestrator.tick()
    await running_job(engine)

    waited = await until_dead(orchestrator, "m1", limit=5)

    assert waited <= DEAD_AFTER_MS / 1000 + 0.2
    assert not orchestrator.outage
