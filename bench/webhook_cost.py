"""What webhooks cost the run scripts, counted in Redis commands (repeatable on a noisy
machine): the same run lifecycle (start, claim, begin, three steps, complete) with no
webhook in the namespace, with one that wants no event this run makes, and with one that
wants ``run.completed``. Counts come from the server's INFO commandstats, which counts
the commands scripts run too; the server's own time (``usec``) is printed beside them,
median of ``--repeats`` rounds (it moves with the machine's load; the counts do not).

    .venv/bin/python bench/webhook_cost.py [--runs 500] [--repeats 3]

Job claims, heartbeats and results of stand-alone jobs never reach the webhook code,
so this measures only the run scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import uuid
from pathlib import Path

from redis.asyncio import Redis

from tether.protocol import activation_function
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.runs import RunEngine
from tether.queue.webhooks import WebhookEngine
from tether.redis_server import RedisServer

CASES = ("no webhook", "a webhook wanting run.failed", "a webhook wanting run.completed")


async def stats(redis: Redis) -> tuple[int, int, int]:
    """(commands, EXISTS commands, usec) the server has run so far."""
    info = await redis.info("commandstats")
    calls = sum(int(v["calls"]) for v in info.values())
    usec = sum(int(v["usec"]) for v in info.values())
    exists = int(info.get("cmdstat_exists", {}).get("calls", 0))
    return calls, exists, usec


async def lifecycle(engine: QueueEngine, runs: RunEngine, run_id: str) -> None:
    await runs.start("w", None, run_id=run_id, version=1)
    [act] = await engine.claim("m1", [activation_function("w", 1)], 1)
    await runs.begin(run_id, act.id, act.token, machine="m1")
    for position in range(3):
        step = {"name": f"s{position}", "kind": "step", "status": "completed", "result": 1}
        await runs.record_step(run_id, act.id, act.token, position, step, machine="m1")
    await runs.complete(run_id, act.id, act.token, {"ok": True}, machine="m1")


async def measure(url: str, case: str, n: int) -> tuple[float, float, float]:
    redis = Redis.from_url(url, decode_responses=True)
    config = QueueConfig(keys=Keys(prefix=f"b{uuid.uuid4().hex[:8]}"))
    engine, runs = QueueEngine(redis, config), RunEngine(redis, config)
    if case != CASES[0]:
        event = "run.failed" if case == CASES[1] else "run.completed"
        await WebhookEngine(redis, config).create("https://example.com/hook", [event])
    await engine.heartbeat("m1")
    await lifecycle(engine, runs, "warm-up")  # scripts loaded before counting
    await redis.config_resetstat()
    for i in range(n):
        await lifecycle(engine, runs, f"r{i}")
    calls, exists, usec = await stats(redis)
    await redis.aclose()
    return calls / n, exists / n, usec / n


async def main(n: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), appendonly=False).start()
        try:
            rows = []
            for case in CASES:
                rounds = [await measure(server.url, case, n) for _ in range(repeats)]
                rows.append(
                    (
                        case,
                        statistics.median(r[0] for r in rounds),
                        statistics.median(r[1] for r in rounds),
                        statistics.median(r[2] for r in rounds),
                    )
                )
        finally:
            server.stop()
    print(f"{n} runs (start, claim, begin, 3 steps, complete), median of {repeats} rounds")
    print("| namespace has | Redis commands / run | of them EXISTS | server µs / run |")
    print("|---|---:|---:|---:|")
    for case, calls, exists, usec in rows:
        print(f"| {case} | {calls:.1f} | {exists:.1f} | {usec:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.repeats))
