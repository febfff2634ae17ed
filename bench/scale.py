"""A million queued jobs, on one Redis and on clusters of 2 and 3 shards.

    .venv/bin/python bench/scale.py [--jobs 1000000] [--batch 1000] [--shards 1,2,3]
                                    [--workers 8] [--partitions 12]

For each shard count it starts its own servers on free loopback ports in a temp folder
(one ``RedisServer``, or a ``RedisCluster`` of that many primaries, AOF off: this
measures memory and CPU, not fsync) and prints:

- bytes per queued job: INFO used_memory summed over the primaries, before and after
  enqueueing ``--jobs`` jobs (batched, ``enqueue_many`` of ``--batch``);
- claim cost (median µs of 200 claims of one job, each followed by its result) with 1k
  and with ``--jobs`` queued: it should be flat;
- listing cost (median µs of 50 ``list_jobs(limit=50)``);
- time to drain every queued job with ``--workers`` concurrent claim+report loops
  (batches of 100), and jobs/s;
- Redis CPU per job while draining: the ``usec`` of INFO commandstats (reset before the
  drain) summed over the primaries, divided by the jobs drained, and each shard's share
  of it (partitions hash to slots unevenly: 12 partitions do not split 4/4/4). This
  machine has few cores shared by every shard and the client, so wall-clock figures
  across shard counts say little; CPU per job says what the work costs wherever it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import Outcome
from tether.queue.redis_py import Client, redis_client
from tether.redis_server import RedisCluster, RedisServer, _call


def primaries(servers: RedisServer | RedisCluster) -> list[int]:
    if isinstance(servers, RedisCluster):
        return [s.port for s in servers.primaries]
    return [servers.port]


def info(port: int, section: str) -> dict[str, str]:
    text = _call(port, "INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and line[0] != "$")


def used_memory(ports: list[int]) -> int:
    return sum(int(info(p, "memory")["used_memory"]) for p in ports)


def script_usec(port: int) -> int:
    total = 0
    for key, value in info(port, "commandstats").items():
        if key.startswith("cmdstat_"):
            fields = dict(f.split("=") for f in value.split(","))
            total += int(fields["usec"])
    return total


async def median_us(times: int, call: Callable[[], Awaitable[Any]]) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


async def enqueue(engine: QueueEngine, jobs: int, batch: int) -> float:
    started = time.perf_counter()
    for first in range(0, jobs, batch):
        size = min(batch, jobs - first)
        await engine.enqueue_many([EnqueueRequest("noop", i) for i in range(size)])
    return time.perf_counter() - started


async def claim_cost(engine: QueueEngine) -> float:
    async def one() -> None:
        [job] = await engine.claim("probe", ["noop"], 1)
        await engine.report([Outcome(job.id, job.token, ok=True, result=None)], machine="probe")

    await engine.heartbeat("probe")
    return await median_us(200, one)


async def drain(engine: QueueEngine, workers: int) -> int:
    async def worker(n: int) -> int:
        machine = f"w{n}"
        await engine.heartbeat(machine)
        done = 0
        while True:
            claimed = await engine.claim(machine, ["noop"], 100)
            if not claimed:
                return done
            outcomes = [Outcome(j.id, j.token, ok=True, result=None) for j in claimed]
            await engine.report(outcomes, machine=machine)
            done += len(claimed)

    return sum(await asyncio.gather(*(worker(n) for n in range(workers))))


async def measure(shards: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    servers: RedisServer | RedisCluster
    if shards == 1:
        servers = RedisServer(folder / "single", appendonly=False).start()
    else:
        servers = RedisCluster(folder / f"cluster{shards}", masters=shards).start()
    redis: Client = redis_client(servers.url, decode_responses=True)
    try:
        ports = primaries(servers)
        keys = Keys(prefix=f"s{uuid.uuid4().hex[:6]}", partitions=args.partitions)
        engine = QueueEngine(redis, QueueConfig(keys=keys))
        small_keys = Keys(prefix=f"k{uuid.uuid4().hex[:6]}", partitions=args.partitions)
        small = QueueEngine(redis, QueueConfig(keys=small_keys))
        await enqueue(small, 1000 + 200, 1000)
        claim_1k = await claim_cost(small)
        before = used_memory(ports)
        took = await enqueue(engine, args.jobs, args.batch)
        per_job = (used_memory(ports) - before) / args.jobs
        claim_full = await claim_cost(engine)
        listing = await median_us(50, lambda: engine.list_jobs(limit=50))
        for port in ports:
            _call(port, "CONFIG", "RESETSTAT")
        started = time.perf_counter()
        drained = await drain(engine, args.workers)
        drain_s = time.perf_counter() - started
        usec = [script_usec(p) for p in ports]
        return {
            "shards": shards,
            "enqueue_jobs_per_s": args.jobs / took,
            "bytes_per_queued_job": per_job,
            "claim_us_1k": claim_1k,
            "claim_us_full": claim_full,
            "list_us": listing,
            "drain_s": drain_s,
            "drain_jobs_per_s": drained / drain_s,
            "redis_us_per_job": sum(usec) / max(1, drained),
            "shard_shares": [u / max(1, sum(usec)) for u in usec],
        }
    finally:
        await redis.aclose()
        servers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--shards", default="1,2,3")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for shards in (int(s) for s in args.shards.split(",")):
            row = asyncio.run(measure(shards, args, Path(tmp)))
            shares = "/".join(f"{u:.0%}" for u in row["shard_shares"])
            print(
                f"shards={row['shards']}  jobs={args.jobs:,}  "
                f"enqueue {row['enqueue_jobs_per_s']:,.0f} jobs/s  "
                f"{row['bytes_per_queued_job']:,.0f} bytes/queued job  "
                f"claim+result {row['claim_us_1k']:,.0f} us (1k queued) / "
                f"{row['claim_us_full']:,.0f} us ({args.jobs:,} queued)  "
                f"list {row['list_us']:,.0f} us  "
                f"drain {row['drain_s']:.1f} s ({row['drain_jobs_per_s']:,.0f} jobs/s, "
                f"{args.workers} workers)  Redis CPU {row['redis_us_per_job']:.1f} us/job "
                f"(shares by shard {shares})",
                flush=True,
            )


if __name__ == "__main__":
    main()
