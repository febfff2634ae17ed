"""Orchestrator replicas divide the partitions by lease: every partition has one owner,
each replica owns at most ceil(P/N), shares rebalance as replicas come and go, and a
replica that stops renewing has its partitions taken over within two leases.

Replicas here are ``Shares`` objects in one process, renewed by hand (the process test
with ``tether orchestrator`` processes is tests/processes/test_orchestrator_shares.py);
leases are shrunk to 300 ms so the tests run in real time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tether.orchestrator.loop import Orchestrator
from tether.orchestrator.shares import Shares
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import Client
from tether.queue.schedules import ScheduleDef, ScheduleEngine

PARTITIONS = 8
LEASE_MS = 300


@pytest.fixture
def engine(redis: Client, keys: Keys) -> QueueEngine:
    sharded = Keys(prefix=keys.prefix, partitions=PARTITIONS)
    return QueueEngine(redis, QueueConfig(keys=sharded, plane_gap_ms=100))


def replicas(engine: QueueEngine, *names: str) -> list[Shares]:
    return [Shares(engine, lease_ms=LEASE_MS, replica=name) for name in names]


async def settle(shares: list[Shares], rounds: int = 3) -> None:
    """Renewals, one replica after another, until the shares have settled."""
    for _ in range(rounds):
        for s in shares:
            await s.renew()


async def test_three_replicas_own_every_one_of_eight_partitions_once(
    engine: QueueEngine,
) -> None:
    shares = replicas(engine, "a", "b", "c")
    await settle(shares)
    owners = await engine.partition_owners()
    assert None not in owners
    assert Counter(owners) == Counter({s.replica: len(s.owned) for s in shares})
    assert max(len(s.owned) for s in shares) == 3  # ceil(8 / 3)
    assert sorted(p for s in shares for p in s.owned) == list(range(PARTITIONS))


async def test_a_lone_replica_owns_every_partition(engine: QueueEngine) -> None:
    [alone] = replicas(engine, "a")
    assert await alone.renew() == list(range(PARTITIONS))


async def test_a_replica_that_joins_gets_its_share_from_those_that_had_more(
    engine: QueueEngine,
) -> None:
    a, b = replicas(engine, "a", "b")
    await a.renew()
    assert len(a.owned) == PARTITIONS
    await settle([b, a, b])
    assert (len(a.owned), len(b.owned)) == (4, 4)
    assert set(a.owned).isdisjoint(b.owned)


async def test_a_replica_that_stops_renewing_is_taken_over_within_two_leases(
    engine: QueueEngine,
) -> None:
    a, b, c = replicas(engine, "a", "b", "c")
    await settle([a, b, c])
    orphaned = set(c.owned)
    assert orphaned
    died = time.monotonic()  # c renews no more, as after a kill -9
    while not orphaned <= set(a.owned) | set(b.owned):
        assert time.monotonic() - died < 2 * LEASE_MS / 1000, "not taken over in two leases"
        for s in (a, b):
            await s.current()  # what each pass does: renew every third of a lease
        await asyncio.sleep(0.01)
    assert (len(a.owned), len(b.owned)) == (4, 4)
    assert await engine.partition_owners() == [
        "a" if p in a.owned else "b" for p in range(PARTITIONS)
    ]


async def test_a_replica_that_leaves_hands_its_partitions_over_at_once(
    engine: QueueEngine,
) -> None:
    a, b = replicas(engine, "a", "b")
    await settle([a, b])
    await b.leave()
    assert await a.renew() == list(range(PARTITIONS))


async def test_more_replicas_than_partitions_leave_the_extra_ones_standing_by(
    redis: Client, keys: Keys
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=Keys(prefix=keys.prefix, partitions=2)))
    shares = [Shares(engine, lease_ms=LEASE_MS, replica=n) for n in "abc"]
    await settle(shares)
    assert sorted(len(s.owned) for s in shares) == [0, 1, 1]
    idle = Orchestrator(engine, interval=0.01, shares=next(s for s in shares if not s.owned))
    # Only the passes every replica makes (each of their transitions is claimed in its
    # own script): no job or run pass.
    assert set(await idle.tick()) == {name for name, _ in idle.every_replica}


async def test_a_standing_by_replica_still_fires_a_due_schedule(redis: Client, keys: Keys) -> None:
    # The owner of the partitions may have just been killed: its leases have not run out
    # yet, and a schedule's tick must not wait for them.
    engine = QueueEngine(redis, QueueConfig(keys=Keys(prefix=keys.prefix, partitions=1)))
    owner, standby = (Shares(engine, lease_ms=60_000, replica=n) for n in "ab")
    await settle([owner, standby])
    assert not standby.owned
    schedules = ScheduleEngine(redis, engine.config)
    await schedules.put(
        ScheduleDef(name="tidy", kind="job", target="tidy", every_ms=60_000, input=None)
    )
    tick = int(await redis.hget(schedules.pk.schedule("tidy"), "next_fire")) - 60_000
    await redis.hset(schedules.pk.schedule("tidy"), "next_fire", tick)
    await redis.zadd(schedules.pk.schedules, {"tidy": tick}, xx=True)

    done = await Orchestrator(engine, interval=0.01, shares=standby).tick()

    assert done["schedules"] == 1
    assert (await engine.get_job(f"sched:tidy:{tick}")).status == "queued"


async def test_an_orchestrator_with_a_share_promotes_only_the_jobs_of_its_partitions(
    engine: QueueEngine,
) -> None:
    a, b = replicas(engine, "a", "b")
    await settle([a, b])
    jobs = await engine.enqueue_many([EnqueueRequest("f", delay_ms=1) for _ in range(40)])
    await asyncio.sleep(0.01)
    assert (await Orchestrator(engine, interval=0.01, shares=a).tick())["promoted"] > 0
    mine = [j for j in jobs if engine.keys.partition_of(j.id) in a.owned]
    assert 0 < len(mine) < len(jobs)
    statuses = {j.id: (await engine.get_job(j.id)).status.value for j in jobs}
    assert {statuses[j.id] for j in mine} == {"queued"}
    assert {statuses[j.id] for j in jobs if j not in mine} == {"delayed"}


async def test_a_partition_taken_over_from_a_dead_owner_counts_a_gap_the_others_do_not(
    engine: QueueEngine,
) -> None:
    a, b = replicas(engine, "a", "b")
    await settle([a, b])
    first = Orchestrator(engine, interval=0.01, shares=a, max_gap_ms=100)
    second = Orchestrator(engine, interval=0.01, shares=b, max_gap_ms=100)
    await first.tick()
    await second.tick()
    taken = set(b.owned)
    # b is killed: its partitions see no pass until a takes them over, a lease later.
    deadline = time.monotonic() + 2 * LEASE_MS / 1000
    while not taken <= set(a.owned):
        assert time.monotonic() < deadline
        await first.tick()
        await asyncio.sleep(0.02)
    gaps = {
        p: (await engine.plane_pass(begin=True, max_gap_ms=100, partitions=[p])).gap
        for p in range(PARTITIONS)
    }
    assert not any(gaps.values())  # the takeover's pass already counted the gap
    assert first.outage  # and said so: machines there are judged from the takeover on
