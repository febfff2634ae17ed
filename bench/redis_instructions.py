"""Redis's CPU cost per job, counted in instructions: repeatable on a noisy machine.

    .venv/bin/python bench/redis_instructions.py [--jobs 2000] [--batch 500] [--keyed]
        [--expires S] [--traced] [--mode plain|priorities|concurrency|keys|rate]
        [--scripts-only]

Runs redis-server (AOF on, everysec) under valgrind's callgrind and drives the engine's
batched path through it: enqueue_many, claim and report of ``--batch`` jobs at a time.
Prints the server's instructions per job in each script. Unlike jobs/s, the count does
not move with whatever else the machine is doing, so a change to a Lua script or to
what the engine sends shows its cost even on a shared 2-core box. (The numbers include
everything the server does for the calls: parsing, Lua, the commands, the AOF buffer.)
``--keyed`` gives every job an idempotency key (as ``tether.Client`` does: it makes one
up for each job it sends); ``--expires S`` gives every job an expiry S seconds away (the
path that writes the expiry zset and that the claim checks).
Needs valgrind on PATH; runs about 50 times slower than the real server.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tether.protocol import TraceContext
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.records import ClaimedJob, Outcome
from tether.redis_server import find_server_binary, free_port


async def wait_up(redis: Redis) -> None:
    for _ in range(600):
        try:
            await redis.ping()
            return
        except RedisConnectionError:
            await asyncio.sleep(0.1)
    raise TimeoutError("redis-server under callgrind did not come up in 60 s")


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, check=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--mode",
        choices=["plain", "priorities", "concurrency", "keys", "rate"],
        default="plain",
        help="queue features in use (docs/queue-features.md), set so nothing is held back: "
        "priorities -2..2, a function concurrency limit, per-key limits (50 keys), a rate",
    )
    parser.add_argument(
        "--scripts-only",
        action="store_true",
        help="count only inside the scripts (luaCallFunction): leaves out the server's "
        "timers, which tick with wall time and make small batches noisy on a loaded box",
    )
    parser.add_argument("--keyed", action="store_true", help="an idempotency key per job")
    parser.add_argument("--expires", type=float, default=None, help="seconds; default none")
    parser.add_argument(
        "--traced",
        action="store_true",
        help="every job comes with a traceparent (kept as one more field of its hash)",
    )
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        port = free_port()
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                *(["--toggle-collect=luaCallFunction"] if args.scripts_only else []),
                str(find_server_binary()),
                *("--port", str(port), "--dir", tmp, "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "everysec"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        redis = Redis(port=port, decode_responses=True)
        try:
            await wait_up(redis)
            engine = QueueEngine(redis, QueueConfig(keys=Keys(prefix="cg")))
            if args.mode in ("concurrency", "rate"):
                # Imported here: the plain mode also runs on code older than the limits,
                # to count the "before" of a change.
                from tether.protocol import FunctionLimits, RateLimit
            if args.mode == "concurrency":
                await engine.set_limits("noop", FunctionLimits(concurrency=10**5))
            elif args.mode == "rate":
                await engine.set_limits(
                    "noop", FunctionLimits(rate=RateLimit(limit=10**6, period=1))
                )
            # Scripts loaded and every code path warmed before counting starts.
            await engine.report(
                [Outcome(j.id, j.token, ok=True) for j in await warm_up(engine, args.batch)],
                machine="m0",
            )
            claimed: list[ClaimedJob] = []
            trace = TraceContext(secrets.token_hex(16), secrets.token_hex(8)).to_field()
            trace = trace if args.traced else None

            def request(i: int) -> EnqueueRequest:
                if args.mode != "plain":
                    return feature_request(args.mode, i)
                if args.expires is not None:
                    return EnqueueRequest(
                        "noop",
                        i,
                        idempotency_key=f"k{i}-{uuid4().hex}" if args.keyed else None,
                        expires_ms=round(args.expires * 1000),
                        trace=trace,
                    )
                if args.keyed:
                    return EnqueueRequest(
                        "noop", i, idempotency_key=f"k{i}-{uuid4().hex}", trace=trace
                    )
                return EnqueueRequest("noop", i, trace=trace)

            async def enqueue() -> None:
                for _ in range(args.jobs // args.batch):
                    requests = [request(i) for i in range(args.batch)]
                    await engine.enqueue_many(requests)

            async def claim() -> None:
                for _ in range(args.jobs // args.batch):
                    claimed.extend(await engine.claim("m1", ["noop"], args.batch))

            async def complete() -> None:
                outcomes = [Outcome(j.id, j.token, ok=True) for j in claimed]
                for i in range(0, len(outcomes), args.batch):
                    await engine.report(outcomes[i : i + args.batch], machine="m1")

            phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("enqueue", enqueue),
                ("claim", claim),
                ("complete", complete),
            ]
            for name, phase in phases:
                control(server.pid, "--zero")
                await phase()
                control(server.pid, "--dump=" + name)
        finally:
            await redis.aclose()
            server.terminate()
            server.wait()
        counts: dict[str, float] = {}
        for dump in Path(tmp).glob("callgrind.out.*"):
            text = dump.read_text()
            trigger = re.search(r"^desc: Trigger: dump (\w+)", text, re.M)
            total = re.search(r"^summary: (\d+)", text, re.M)
            if trigger and total:
                counts[trigger.group(1)] = int(total.group(1)) / args.jobs
    shape = "idempotency key" if args.keyed else "no key"
    if args.expires is not None:
        shape += f", expires in {args.expires:g} s"
    if args.traced:
        shape += ", each with a traceparent"
    if args.mode != "plain":
        shape += f", mode {args.mode}"
    if args.scripts_only:
        shape += ", inside the scripts only"
    print(
        f"server: {find_server_binary()}, AOF everysec, {args.jobs} jobs, "
        f"batch {args.batch}, {shape}"
    )
    print()
    print("| script | Redis instructions per job |")
    print("|---|---:|")
    for name, _ in phases:
        print(f"| {name} | {counts.get(name, float('nan')):,.0f} |")
    print(f"| all three | {sum(counts.values()):,.0f} |")


def feature_request(mode: str, i: int) -> EnqueueRequest:
    if mode == "priorities":
        return EnqueueRequest("noop", i, priority=i % 5 - 2)
    if mode == "keys":
        return EnqueueRequest("noop", i, concurrency_key=f"k{i % 50}", concurrency_limit=10**5)
    return EnqueueRequest("noop", i)


async def warm_up(engine: QueueEngine, batch: int) -> list[ClaimedJob]:
    await engine.enqueue_many([EnqueueRequest("noop", i) for i in range(batch)])
    return await engine.claim("m0", ["noop"], batch)


if __name__ == "__main__":
    asyncio.run(main())
