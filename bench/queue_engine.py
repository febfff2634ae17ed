"""Queue engine throughput next to what Redis itself does on the same server.

    .venv/bin/python bench/queue_engine.py [--jobs 20000] [--batch 500] [--runs 5]

Starts its own Redis server (the same binary the tests use, AOF on with everysec, as in
production) on a free port in a temp folder — never 6379 — and prints:

1. engine throughput, jobs/s for the full life of a job (enqueue + claim + complete):
   batched (enqueue_many of B, claim B, report B) and one by one (one job at a time, one
   client, each call awaited), median of several runs, each on an empty Redis;
2. where the time goes: Redis's own microseconds per job in each script (from INFO
   commandstats, reset before each phase), the Redis commands a job costs inside the
   scripts, the client's CPU per job, and the SLOWLOG's entries over 1 ms;
3. ``redis-benchmark`` (shipped next to redis-server) on the same server, for SET, LPUSH,
   XADD and EVALSHA of a trivial script, unpipelined and pipelined (-P 100); the column
   is skipped when the binary is missing;
4. the claim's and complete's Redis time per job with each queue feature in use
   (priorities, concurrency limits, rate limits; docs/queue-features.md) beside the plain
   path, the limits set so that nothing is held back: the cost of checking them;
5. memory per finished job (INFO used_memory before and after N completed jobs, retained
   for the default 7 days), and per queued job.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis

from tether.protocol import FunctionLimits, RateLimit
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import ClaimedJob, Outcome
from tether.redis_server import RedisServer, find_server_binary


def fresh_engine(redis: Redis) -> QueueEngine:
    return QueueEngine(redis, QueueConfig(keys=Keys(prefix=f"b{uuid.uuid4().hex[:8]}")))


async def batched(redis: Redis, jobs: int, batch: int) -> float:
    """jobs/s: enqueue_many(batch) -> claim(batch) -> report(batch), until ``jobs`` done."""
    engine = fresh_engine(redis)
    started = time.perf_counter()
    done = 0
    while done < jobs:
        await engine.enqueue_many([EnqueueRequest("noop", i) for i in range(batch)])
        claimed = await engine.claim("m1", ["noop"], batch)
        verdicts = await engine.report(
            [Outcome(job.id, job.token, ok=True, result=None) for job in claimed], machine="m1"
        )
        assert all(v.accepted for v in verdicts)
        done += len(claimed)
    return done / (time.perf_counter() - started)


async def batched_lanes(redis: Redis, jobs: int, batch: int, lanes: int = 4) -> float:
    """jobs/s: ``lanes`` of the batched loop at once (each its own function and machine),
    so the client's encoding overlaps Redis's work instead of waiting for it."""
    engine = fresh_engine(redis)

    async def lane(n: int) -> int:
        done = 0
        while done < jobs // lanes:
            await engine.enqueue_many([EnqueueRequest(f"noop{n}", i) for i in range(batch)])
            claimed = await engine.claim(f"m{n}", [f"noop{n}"], batch)
            verdicts = await engine.report(
                [Outcome(job.id, job.token, ok=True, result=None) for job in claimed],
                machine=f"m{n}",
            )
            assert all(v.accepted for v in verdicts)
            done += len(claimed)
        return done

    started = time.perf_counter()
    done = sum(await asyncio.gather(*(lane(n) for n in range(lanes))))
    return done / (time.perf_counter() - started)


async def client_cpu_per_job(redis: Redis, jobs: int, batch: int) -> float:
    """Microseconds of this process's CPU per job in the batched loop: the client's share
    (encoding, parsing, the engine's Python), which competes with Redis for the cores."""
    started = time.process_time()
    await batched(redis, jobs, batch)
    return (time.process_time() - started) / jobs * 1e6


async def one_by_one(redis: Redis, jobs: int) -> float:
    """jobs/s: enqueue -> claim 1 -> complete, each awaited before the next."""
    engine = fresh_engine(redis)
    started = time.perf_counter()
    for i in range(jobs):
        await engine.enqueue("noop", i)
        (job,) = await engine.claim("m1", ["noop"], 1)
        await engine.complete(job.id, job.token, None, machine=job.machine)
    return jobs / (time.perf_counter() - started)


async def median_of(runs: int, make: Callable[[], Awaitable[float]]) -> float:
    return statistics.median([await make() for _ in range(runs)])


def on_empty(redis: Redis, make: Callable[[], Awaitable[float]]) -> Callable[[], Awaitable[float]]:
    """``make`` run on an empty Redis: otherwise every run inherits the finished jobs of
    the runs before it (kept for the 7-day retention), so later runs work on an ever
    bigger keyspace and AOF rewrites, and runs are not alike."""

    async def run() -> float:
        await redis.flushall()
        return await make()

    return run


async def script_costs(redis: Redis, jobs: int, batch: int) -> dict[str, float]:
    """Redis-side microseconds per job in each phase's script (INFO commandstats), and
    the Redis commands a job costs in all (counted inside the scripts too)."""
    engine = fresh_engine(redis)
    costs: dict[str, float] = {}
    commands = 0

    async def measure(name: str, work: Callable[[], Awaitable[object]]) -> None:
        nonlocal commands
        await redis.config_resetstat()
        await work()
        stats = await redis.info("commandstats")
        costs[name] = float(stats.get("cmdstat_evalsha", {}).get("usec", 0)) / jobs
        commands += sum(
            int(v["calls"])
            for k, v in stats.items()
            if k not in ("cmdstat_evalsha", "cmdstat_config|resetstat", "cmdstat_info")
        )

    claimed: list[ClaimedJob] = []

    async def enqueue() -> None:
        for _ in range(jobs // batch):
            await engine.enqueue_many([EnqueueRequest("noop", i) for i in range(batch)])

    async def claim() -> None:
        for _ in range(jobs // batch):
            claimed.extend(await engine.claim("m1", ["noop"], batch))

    async def complete() -> None:
        outcomes = [Outcome(j.id, j.token, ok=True) for j in claimed]
        for i in range(0, len(outcomes), batch):
            await engine.report(outcomes[i : i + batch], machine="m1")

    await measure("enqueue", enqueue)
    await measure("claim", claim)
    await measure("complete", complete)
    costs["commands"] = commands / jobs
    return costs


# The queue features' claim beside the plain one (docs/queue-features.md): each mode's
# jobs and limits, set so nothing is held back (the cost of checking, not of waiting).
FEATURE_MODES: dict[str, str] = {
    "plain (priority 0, no limits)": "plain",
    "priorities (5 levels, -2..2)": "priorities",
    "function concurrency limit": "concurrency",
    "per-key concurrency (50 keys)": "keys",
    "function rate limit": "rate",
    "per-key rate limit (50 keys)": "key_rate",
}


def feature_request(mode: str, i: int) -> EnqueueRequest:
    if mode == "priorities":
        return EnqueueRequest("noop", i, priority=i % 5 - 2)
    if mode in ("keys", "key_rate"):
        return EnqueueRequest("noop", i, concurrency_key=f"k{i % 50}", concurrency_limit=10**5)
    return EnqueueRequest("noop", i)


async def feature_costs(redis: Redis, mode: str, jobs: int, batch: int) -> tuple[float, float]:
    """Redis-side microseconds per job of claim and of complete, for one mode."""
    engine = fresh_engine(redis)
    big = RateLimit(limit=10**6, period=1.0)
    if mode == "concurrency":
        await engine.set_limits("noop", FunctionLimits(concurrency=10**5))
    elif mode == "rate":
        await engine.set_limits("noop", FunctionLimits(rate=big))
    elif mode == "key_rate":
        await engine.set_limits("noop", FunctionLimits(key_rate=big))
    for start in range(0, jobs, batch):
        await engine.enqueue_many([feature_request(mode, start + i) for i in range(batch)])

    async def usec() -> float:
        stats = await redis.info("commandstats")
        return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))

    claimed: list[ClaimedJob] = []
    await redis.config_resetstat()
    for _ in range(jobs // batch):
        claimed.extend(await engine.claim("m1", ["noop"], batch))
    claim_us = await usec() / jobs
    assert len(claimed) == jobs, f"{mode}: claimed {len(claimed)} of {jobs}"
    await redis.config_resetstat()
    outcomes = [Outcome(j.id, j.token, ok=True) for j in claimed]
    for i in range(0, len(outcomes), batch):
        await engine.report(outcomes[i : i + batch], machine="m1")
    return claim_us, await usec() / jobs


async def memory_per_job(redis: Redis, jobs: int, batch: int) -> tuple[float, float]:
    """Bytes of Redis memory per queued job and per finished (retained) job."""
    engine = fresh_engine(redis)

    async def used() -> int:
        return int((await redis.info("memory"))["used_memory"])

    before = await used()
    for _ in range(jobs // batch):
        await engine.enqueue_many([EnqueueRequest("noop", {"n": i}) for i in range(batch)])
    queued = (await used() - before) / jobs
    for _ in range(jobs // batch):
        claimed = await engine.claim("m1", ["noop"], batch)
        await engine.report(
            [Outcome(j.id, j.token, ok=True, result={"ok": True}) for j in claimed], machine="m1"
        )
    finished = (await used() - before) / jobs
    return queued, finished


def redis_benchmark(port: int, requests: int, sha: str) -> dict[str, tuple[float, float]] | None:
    """ops/s of plain commands: (unpipelined, 50 clients) and (-P 100)."""
    binary = shutil.which("redis-benchmark") or str(
        find_server_binary().with_name("redis-benchmark")
    )
    if not Path(binary).exists():
        return None
    commands = {
        "SET": ["SET", "bench:k", "v"],
        "LPUSH": ["LPUSH", "bench:l", "v"],
        "XADD": ["XADD", "bench:s", "MAXLEN", "~", "10000", "*", "f", "v"],
        "EVALSHA (return 1)": ["EVALSHA", sha, "0"],
    }
    results: dict[str, tuple[float, float]] = {}
    for name, command in commands.items():
        rates = []
        for pipeline in ("1", "100"):
            out = subprocess.run(
                [binary, "-p", str(port), "-n", str(requests), "-P", pipeline, "-q", *command],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            # "<cmd>: 123456.79 requests per second, p50=..." (the last \r-separated line)
            found = re.findall(r"([\d.]+) requests per second", out)
            rates.append(float(found[-1]))
        results[name] = (rates[0], rates[1])
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per batched run")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single", type=int, default=1_000, help="jobs per one-by-one run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), appendonly=True, appendfsync="everysec").start()
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            version = (await redis.info("server")).get("redis_version")
            print(f"server: {server.binary} {version}, AOF everysec, port {server.port}")
            await one_by_one(redis, 200)  # warm up: scripts loaded, connections open
            batch_rate = await median_of(
                args.runs, on_empty(redis, lambda: batched(redis, args.jobs, args.batch))
            )
            lanes_rate = await median_of(
                args.runs, on_empty(redis, lambda: batched_lanes(redis, args.jobs, args.batch))
            )
            single_rate = await median_of(
                args.runs, on_empty(redis, lambda: one_by_one(redis, args.single))
            )
            await redis.flushall()
            costs = await script_costs(redis, args.jobs, args.batch)
            client_cpu = await median_of(
                args.runs,
                on_empty(redis, lambda: client_cpu_per_job(redis, args.jobs, args.batch)),
            )
            await redis.flushall()
            await redis.slowlog_reset()
            await redis.config_set("slowlog-log-slower-than", 1000)
            await batched(redis, args.jobs, args.batch)
            slow = await redis.slowlog_get(5)
            features: dict[str, tuple[float, float]] = {}
            for label, mode in FEATURE_MODES.items():
                rows = []
                for _ in range(args.runs):
                    await redis.flushall()
                    rows.append(await feature_costs(redis, mode, args.jobs, args.batch))
                features[label] = (
                    statistics.median(r[0] for r in rows),
                    statistics.median(r[1] for r in rows),
                )
            await redis.flushall()
            queued, finished = await memory_per_job(redis, args.jobs, args.batch)
            sha = await redis.script_load("return 1")
            plain = redis_benchmark(server.port, 200_000, sha)
        finally:
            await redis.aclose()
            server.stop()

    print()
    print(f"| engine, jobs/s (enqueue + claim + complete) | median of {args.runs} |")
    print("|---|---:|")
    print(
        f"| batched: enqueue_many {args.batch}, claim {args.batch}, report {args.batch} "
        f"| {batch_rate:,.0f} |"
    )
    print(f"| batched, 4 lanes at once (one client process) | {lanes_rate:,.0f} |")
    print(f"| one by one: enqueue, claim 1, complete (1 client) | {single_rate:,.0f} |")
    print()
    print("| Redis-side time per job, batched (INFO commandstats) | µs |")
    print("|---|---:|")
    for name in ("enqueue", "claim", "complete"):
        print(f"| {name} | {costs[name]:.1f} |")
    total = costs["enqueue"] + costs["claim"] + costs["complete"]
    print(f"| all three (server-bound ceiling ≈ {1e6 / total:,.0f} jobs/s) | {total:.1f} |")
    print(f"| Redis commands per job, inside the scripts | {costs['commands']:.0f} |")
    print(f"| client CPU per job, batched (this Python process, median) | {client_cpu:.1f} |")
    print()
    print(
        "SLOWLOG (> 1 ms) during a batched run:",
        [(e["duration"], " ".join(str(a) for a in e["command"].split()[:2])) for e in slow]
        or "empty",
    )
    print()
    if plain is None:
        print("redis-benchmark: not found next to the server binary, column skipped")
    else:
        print("| redis-benchmark, same server | ops/s, 50 clients | ops/s, -P 100 |")
        print("|---|---:|---:|")
        for name, (single, piped) in plain.items():
            print(f"| {name} | {single:,.0f} | {piped:,.0f} |")
    print()
    plain_claim = features["plain (priority 0, no limits)"][0]
    print(
        f"| claim with queue features, batch {args.batch} (Redis µs per job, "
        f"median of {args.runs}) | claim | vs plain | complete |"
    )
    print("|---|---:|---:|---:|")
    for label, (claim_us, complete_us) in features.items():
        print(f"| {label} | {claim_us:.1f} | {claim_us / plain_claim:.2f}x | {complete_us:.1f} |")
    print()
    print("| memory | bytes per job |")
    print("|---|---:|")
    print(f"| queued (hash + stream entry + timeline + index) | {queued:,.0f} |")
    print(f"| finished, retained 7 days (result, timeline, index) | {finished:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
