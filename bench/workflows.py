"""Durable workflows, measured: the overhead of one ``ctx.step`` and workflows/s.

- step overhead: a workflow of 20 no-op steps; each ``await ctx.step(...)`` is timed
  inside the workflow, from the call to the return (the step's function does nothing, so
  this is the cost of durability: one HTTP request to the API, one Lua script in Redis).
  Also measured straight against the RunEngine (one Lua script, no HTTP) for reference.
- workflows/s: N runs of a 3-step workflow started at once through the HTTP API, timed
  from the first start to the last completion.

tether: Redis started here (AOF on, appendfsync everysec), one API process
(`tether api`), one worker in this process (max_jobs 50), talking HTTP over loopback.
DBOS: measured side by side when a Postgres server answers at 127.0.0.1:5432 and the
`dbos` package is installed (`pip install -e '.[bench]'`), in its own process.

- loop cost: one step+sleep(0) loop iteration (step, suspend, next activation) near
  iteration 100 and near the last, for a plain loop on a worker with sticky replay
  (the default: flat), on one without (``max_cached_runs=0``: grows with the history)
  and for a loop that continues as new every 100 iterations.

Each figure is the median over --runs runs. Usage:
    .venv/bin/python bench/workflows.py [--runs 3] [--workflows 300]
    .venv/bin/python bench/workflows.py --only-latency --sequential 50
    .venv/bin/python bench/workflows.py --only-loops --loop 100 1000 5000 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from peers import peer_python, peer_version
from redis.asyncio import Redis

from tether import AsyncClient
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.runs import RunEngine
from tether.redis_server import RedisServer, free_port
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import run_activation, workflow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from engine_backend import EngineBackend  # a test helper

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "tether.cli", "--log-level", "WARNING"]
PG_URL = "postgresql://postgres@127.0.0.1:5432/tether_bench_dbos"
STEPS = 20
STEP_RUNS = 25  # workflows of 20 steps per measurement: 500 timed steps

STEP_TIMES: list[float] = []


async def noop(i: int) -> int:
    return i


@workflow(name="bench_steps")
async def bench_steps(ctx: WorkflowContext, n: int) -> int:
    for i in range(n):
        t0 = time.perf_counter()
        await ctx.step(f"s{i}", noop, i)
        STEP_TIMES.append((time.perf_counter() - t0) * 1000)
    return n


@workflow(name="bench_three")
async def bench_three(ctx: WorkflowContext, x: int) -> int:
    a = await ctx.step("a", noop, x)
    b = await ctx.step("b", noop, a + 1)
    return int(await ctx.step("c", noop, b + 1))


# iteration -> when its step ran (live, once): wall clock, and this process's CPU time
# (the worker's replay is what grows without sticky replay; CPU time is what a loaded
# shared box blurs least).
STAMPS: dict[int, tuple[float, float]] = {}


def stamp(i: int) -> int:
    STAMPS[i] = (time.perf_counter(), time.process_time())
    return i


@workflow(name="bench_loop")
async def bench_loop(ctx: WorkflowContext, state: dict[str, int]) -> int:
    """A step+sleep(0) loop; with ``every``, it continues as new every that many."""
    i, n, every = state["i"], state["n"], state["every"]
    while i < n:
        await ctx.step("stamp", stamp, i)
        await ctx.sleep(0)
        i += 1
        if every and i % every == 0 and i < n:
            ctx.continue_as_new({"i": i, "n": n, "every": every})
    return i


def iteration_ms(around: int, width: int = 50, cpu: bool = False) -> float:
    """Median time of one loop iteration (step, sleep, next activation) near ``around``:
    wall clock, or with ``cpu`` the worker process's CPU time."""
    lo = max(1, around - width)
    k = 1 if cpu else 0
    gaps = [(STAMPS[i][k] - STAMPS[i - 1][k]) * 1000 for i in range(lo, around) if i - 1 in STAMPS]
    return statistics.median(gaps)


async def loop_costs(
    url: str, n: int, every: int, cached: int = 1000
) -> tuple[float, float, float, float]:
    """Iteration cost at iteration 100 and at ``n`` of one loop run to ``n``; ``cached``
    is the worker's max_cached_runs (0: no sticky replay, every activation replays)."""
    STAMPS.clear()
    settings = {
        "workflows": [bench_loop],
        "max_jobs": 10,
        "shutdown_grace": 1,
        "max_cached_runs": cached,
    }
    async with Worker(settings, url=url) as _, AsyncClient(url, timeout=60) as client:
        run = await client.start("bench_loop", {"i": 0, "n": n, "every": every}, version=1)
        await client.result(run.id, wait=3600)
    return (
        iteration_ms(100),
        iteration_ms(n),
        iteration_ms(100, cpu=True),
        iteration_ms(n, cpu=True),
    )


async def script_calls(redis_url: str) -> int:
    """Lua scripts Redis ran so far (EVALSHA calls): each is one durable write, so their
    count per run is a figure that CPU load on a shared box does not blur."""
    redis = Redis.from_url(redis_url)
    try:
        stats = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def scripts_per_run(url: str, redis_url: str, count: int = 20) -> tuple[float, float]:
    """EVALSHA calls per 3-step run, started and awaited one at a time: start + result,
    and execute (nan where the client has none). Heartbeats and the orchestrator-free
    API's own signs of life count too; a quiet second is measured and taken off."""
    settings = {"workflows": [bench_three], "max_jobs": 10, "shutdown_grace": 1}
    async with Worker(settings, url=url) as _, AsyncClient(url, timeout=60) as client:
        await client.result((await client.start("bench_three", 0, version=1)).id, wait=60)
        before = await script_calls(redis_url)
        await asyncio.sleep(1.0)
        idle = await script_calls(redis_url) - before
        t0, before = time.perf_counter(), await script_calls(redis_url)
        for i in range(count):
            await client.result((await client.start("bench_three", i, version=1)).id, wait=60)
        two = (await script_calls(redis_url) - before - idle * (time.perf_counter() - t0)) / count
        execute = getattr(client, "execute", None)
        if execute is None:
            return two, float("nan")
        t0, before = time.perf_counter(), await script_calls(redis_url)
        for i in range(count):
            await execute("bench_three", i, version=1, wait=60)
        one = (await script_calls(redis_url) - before - idle * (time.perf_counter() - t0)) / count
    return two, one


async def sequential_latency(url: str, count: int) -> tuple[list[float], list[float]]:
    """A 3-step workflow started and awaited one at a time: ``Client.start`` +
    ``result`` (two requests), and ``Client.execute`` (one, ``POST /v1/runs?wait``;
    empty where the client has none), interleaved so both see the same load."""
    settings = {"workflows": [bench_three], "max_jobs": 10, "shutdown_grace": 1}
    two: list[float] = []
    one: list[float] = []
    async with Worker(settings, url=url) as _, AsyncClient(url, timeout=60) as client:
        execute = getattr(client, "execute", None)
        for i in range(count + 5):
            t0 = time.perf_counter()
            run = await client.start("bench_three", i, version=1)
            await client.result(run.id, wait=60)
            t1 = time.perf_counter()
            if execute is not None:
                await execute("bench_three", i, version=1, wait=60)
            t2 = time.perf_counter()
            if i >= 5:  # warm-up: connections, script loads
                two.append((t1 - t0) * 1000)
                if execute is not None:
                    one.append((t2 - t1) * 1000)
    return two, one


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


@contextlib.contextmanager
def api_process(redis_url: str, prefix: str, logs: Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, TETHER_REDIS_URL=redis_url, TETHER_PREFIX=prefix)
    with (logs / "api.log").open("ab") as out:
        proc = subprocess.Popen(
            # No API keys: this measures workflows, not auth (bench/auth_check.py does).
            [*CLI, "api", "--host", "127.0.0.1", "--port", str(port), "--no-auth"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{(logs / 'api.log').read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def tether_http(url: str, workflows: int) -> tuple[list[float], float]:
    STEP_TIMES.clear()
    settings = {"workflows": [bench_steps, bench_three], "max_jobs": 50, "shutdown_grace": 1}
    async with Worker(settings, url=url) as _, AsyncClient(url, timeout=60) as client:
        for _ in range(STEP_RUNS):
            run = await client.start("bench_steps", STEPS, version=1)
            await client.result(run.id, wait=60)
        step_ms = list(STEP_TIMES)
        # Few connections at once: httpx's pool costs O(open requests) per request, and
        # a hundred parked long polls would measure the client, not tether.
        gate = asyncio.Semaphore(8)

        async def start(i: int) -> str:
            async with gate:
                return (await client.start("bench_three", i, version=1)).id

        t0 = time.perf_counter()
        ids = await asyncio.gather(*(start(i) for i in range(workflows)))
        for run_id in ids:  # one waiting request at a time: done when the last is
            assert (await client.wait_run(run_id, wait=120)).status == "completed"
        rate = workflows / (time.perf_counter() - t0)
    return step_ms, rate


async def tether_lua(redis_url: str, keys: Keys) -> list[float]:
    """The same 20-step workflow against the RunEngine directly: Lua cost only."""
    STEP_TIMES.clear()
    redis = Redis.from_url(redis_url, decode_responses=True)
    config = QueueConfig(keys=keys)
    engine, runs = QueueEngine(redis, config), RunEngine(redis, config)
    from tether.protocol import LeasedJob

    try:
        for _ in range(STEP_RUNS):
            started = await runs.start("bench_steps", STEPS, version=1)
            job = (await engine.claim("bench", ["wf:bench_steps@1"], 1))[0]
            leased = LeasedJob(
                id=job.id,
                function=job.function,
                input=job.input,
                attempt=job.attempt,
                max_attempts=job.max_attempts,
                token=job.token,
                timeout=None,
                parent=job.parent,
            )
            await run_activation(bench_steps, EngineBackend(runs, leased, job.machine))
            await engine.complete(job.id, job.token, None, machine=job.machine)
            assert (await runs.get(started.id)).status == "completed"
    finally:
        await redis.aclose()
    return list(STEP_TIMES)


def postgres_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5432)) == 0


def dbos_once(workflows: int) -> tuple[list[float], float]:
    out = subprocess.run(
        [peer_python(), str(HERE / "dbos_workflows.py"), PG_URL, str(STEP_RUNS), str(workflows)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["step_ms"], data["workflows_per_s"]


def row(name: str, p50s: list[float], p99s: list[float], rates: list[float] | None) -> str:
    rate = f"{statistics.median(rates):,.0f}" if rates else "-"
    return f"| {name} | {statistics.median(p50s):.3f} | {statistics.median(p99s):.3f} | {rate} |"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--sequential", type=int, default=50, help="3-step runs one at a time")
    parser.add_argument(
        "--loop",
        type=int,
        nargs="+",
        default=[10_000],
        help="iterations of the plain loop (several: one run each)",
    )
    parser.add_argument(
        "--naive-loop", type=int, default=600, help="... on a worker without sticky replay"
    )
    parser.add_argument("--only-latency", action="store_true", help="skip the other figures")
    parser.add_argument("--only-loops", action="store_true", help="only the loop figures")
    args = parser.parse_args()

    results: dict[str, tuple[list[float], list[float], list[float]]] = {}

    def add(name: str, steps: list[float], rate: float | None) -> None:
        p50s, p99s, rates = results.setdefault(name, ([], [], []))
        p50s.append(pct(steps, 50))
        p99s.append(pct(steps, 99))
        if rate is not None:
            rates.append(rate)

    latency_rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for fsync in () if args.only_loops else ("always", "everysec"):
            server = RedisServer(Path(tmp) / f"redis-{fsync}", appendonly=True, appendfsync=fsync)
            server.start()
            try:
                with api_process(server.url, f"lat{fsync}", Path(tmp)) as url:
                    lat, lat_one = await sequential_latency(url, args.sequential)
                    scripts_two, scripts_one = await scripts_per_run(url, server.url)
                    STEP_TIMES.clear()
                    async with (
                        Worker({"workflows": [bench_steps]}, url=url) as _,
                        AsyncClient(url, timeout=60) as client,
                    ):
                        for _ in range(5):
                            await client.result(
                                (await client.start("bench_steps", STEPS, version=1)).id
                            )
                    step = pct(STEP_TIMES, 50)
                one = f"{pct(lat_one, 50):.1f} | {pct(lat_one, 90):.1f}" if lat_one else "- | -"
                latency_rows.append(
                    f"| appendfsync {fsync} | {pct(lat, 50):.1f} | {pct(lat, 90):.1f} | "
                    f"{one} | {step:.2f} | {scripts_two:.1f} / {scripts_one:.1f} |"
                )
            finally:
                server.stop()
        if latency_rows:
            print(
                "\n3-step workflow, started and awaited one at a time over HTTP "
                f"({args.sequential} runs), and the step p50 (100 steps)\n"
            )
            print(
                "| Redis | start+result p50 (ms) | p90 (ms) | execute p50 (ms) | p90 (ms) "
                "| step p50 (ms) | Lua scripts per run (start+result / execute) |"
            )
            print("|---|---|---|---|---|---|---|")
            print("\n".join(latency_rows))
        if args.only_latency:
            return

        server = RedisServer(Path(tmp) / "redis", appendonly=True, appendfsync="everysec").start()
        try:
            with api_process(server.url, "loops", Path(tmp)) as url:
                loops = [
                    (f"plain, sticky replay, {n:,} iterations", await loop_costs(url, n, 0))
                    for n in args.loop
                ]
                loops.append(
                    (
                        f"plain, no sticky replay (max_cached_runs=0), {args.naive_loop:,} "
                        "iterations",
                        await loop_costs(url, args.naive_loop, 0, cached=0),
                    )
                )
                loops.append(
                    (
                        f"continue_as_new every 100, {args.loop[-1]:,} iterations",
                        await loop_costs(url, args.loop[-1], 100),
                    )
                )
            print("\nOne step+sleep(0) loop iteration (ms; median of the 50 before it)\n")
            print("| loop | at 100 | at the end | worker CPU at 100 | worker CPU at the end |")
            print("|---|---|---|---|---|")
            for name, (at_100, at_end, cpu_100, cpu_end) in loops:
                print(f"| {name} | {at_100:.2f} | {at_end:.2f} | {cpu_100:.2f} | {cpu_end:.2f} |")
            if args.only_loops:
                return
            for i in range(args.runs):
                keys = Keys(prefix=f"bench{i}")
                with api_process(server.url, keys.prefix, Path(tmp)) as url:
                    steps, rate = await tether_http(url, args.workflows)
                add("tether, HTTP worker (Redis AOF everysec)", steps, rate)
                add(
                    "tether, RunEngine direct (Lua only, no HTTP)",
                    await tether_lua(server.url, Keys(prefix=f"benchlua{i}")),
                    None,
                )
        finally:
            server.stop()

    dbos_note = ""
    if not postgres_up():
        dbos_note = "DBOS: not measured (no Postgres server at 127.0.0.1:5432)"
    elif (dbos_version := peer_version("dbos")) is None:
        dbos_note = f"DBOS: not measured (not in {peer_python()}: `make bench` installs it)"
    else:
        for _ in range(args.runs):
            steps, rate = dbos_once(args.workflows)
            add(f"DBOS {dbos_version}, Postgres 127.0.0.1:5432", steps, rate)

    print(
        f"\nDurable step overhead and 3-step workflows/s (median of {args.runs} runs; "
        f"{STEP_RUNS * STEPS} timed steps per run; {args.workflows} workflows at once)\n"
    )
    print("| system | step p50 (ms) | step p99 (ms) | 3-step workflows/s |")
    print("|---|---|---|---|")
    for name, (p50s, p99s, rates) in results.items():
        print(row(name, p50s, p99s, rates or None))
    if dbos_note:
        print(f"\n{dbos_note}")


if __name__ == "__main__":
    asyncio.run(main())
