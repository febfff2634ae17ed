"""What logging costs a job: jobs that log 10 lines (Python ``logging``, captured by the
worker, shipped to the API, stored in Redis) against jobs that log none, side by side on
one stack (a Redis server this script starts, with AOF ``always``; one API, one
orchestrator, --workers worker processes, all as real processes).

For each kind of job, in every run (kinds alternate, in reverse order every other run):
- throughput: --jobs jobs enqueued in batches, timed from the first enqueue to the last
  result; and the CPU time (user + system, /proc) the workers and the API spent on them;
- latency: --samples jobs one at a time, enqueue to result (``AsyncClient.call``).
Every figure is the median over --runs runs; the last row is chatty over quiet.

The workers run with ``--log-level WARNING`` (as end_to_end.py does): the captured INFO
lines are shipped, not also written to stderr, so the row measures capture and shipping.

Then, in this process, the CPU one ``log.info(...)`` line costs (median of 3): filtered
out, at INFO to a NullHandler (what Python's logging costs by itself), to a formatted
file, and captured by tether (buffered, encoded once): what capture adds to logging.

Usage:
    .venv/bin/python bench/log_cost.py [--jobs 3000] [--runs 5] [--workers 2] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from end_to_end import (
    CLI,
    Procs,
    child_env,
    cpu_seconds,
    pct,
    running,
    wait_all_done,
    wait_until,
)
from redis.asyncio import Redis

from tether.client import AsyncClient
from tether.errors import ApiUnavailable
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys
from tether.redis_server import RedisServer, free_port

KINDS = ("quiet", "chatty")


async def bench(
    args: argparse.Namespace, redis_url: str, logs: Path
) -> dict[str, dict[str, list[float]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = child_env(redis_url, args.max_jobs, TETHER_URL=url)
    env.pop("TETHER_API_KEY", None)
    redis = Redis.from_url(redis_url, decode_responses=True)
    pk = Keys().partition(0)
    store = KeyStore(redis, Keys())
    app_key, _ = await store.create("bench-app", "app")
    machine_key, _ = await store.create("bench-machine", "machine")
    figures: dict[str, dict[str, list[float]]] = {
        k: {"rate": [], "p50": [], "worker_us": [], "api_us": [], "lines": []} for k in KINDS
    }
    with running(Procs(logs)) as procs:
        api_pid = procs.start(
            "api", [*CLI, "api", "--host", "127.0.0.1", "--port", str(port)], env
        ).pid
        procs.start("orchestrator", [*CLI, "orchestrator"], env)
        worker_env = env | {"TETHER_API_KEY": machine_key}
        workers = [
            procs.start(f"worker-{i}", [*CLI, "worker", "tether_jobs:WorkerSettings"], worker_env)
            for i in range(args.workers)
        ]
        pids = [w.pid for w in workers]
        async with AsyncClient(url, timeout=30, api_key=app_key) as client:

            async def registered() -> bool:
                procs.check_alive()
                try:
                    return len(await client.machines()) >= args.workers
                except ApiUnavailable:
                    return False

            await wait_until(registered, 60, "workers to register")

            async def done(window: list[str]) -> int:
                async with redis.pipeline(transaction=False) as pipe:
                    for job_id in window:
                        pipe.hget(pk.job(job_id), "status")
                    statuses = await pipe.execute()
                return sum(1 for s in statuses if s in ("completed", "failed", "dead"))

            async def throughput(kind: str, n: int) -> tuple[float, float, float, str]:
                worker_before, api_before = cpu_seconds(pids), cpu_seconds([api_pid])
                started = time.perf_counter()
                ids: list[str] = []
                for offset in range(0, n, 1000):
                    batch = [{"function": kind} for _ in range(min(1000, n - offset))]
                    ids.extend(job.id for job in await client.enqueue_many(batch))
                await wait_all_done(ids, done)
                elapsed = time.perf_counter() - started
                worker = (cpu_seconds(pids) - worker_before) * 1e6 / n
                api = (cpu_seconds([api_pid]) - api_before) * 1e6 / n
                return n / elapsed, worker, api, ids[-1]

            for kind in KINDS:  # warm up
                await throughput(kind, min(500, args.jobs))
            for run in range(args.runs):
                for kind in KINDS if run % 2 == 0 else reversed(KINDS):
                    rate, worker_us, api_us, last = await throughput(kind, args.jobs)
                    samples = []
                    for _ in range(args.samples):
                        sent = time.perf_counter()
                        await client.call(kind, wait=10)
                        samples.append((time.perf_counter() - sent) * 1000)
                    stored = len((await client.logs(last, limit=1000)).lines)
                    f = figures[kind]
                    f["rate"].append(rate)
                    f["p50"].append(pct(samples, 50))
                    f["worker_us"].append(worker_us)
                    f["api_us"].append(api_us)
                    f["lines"].append(stored)
                    print(
                        f"    run {run + 1} {kind:<6} {rate:,.0f} jobs/s, "
                        f"p50 {pct(samples, 50):.2f} ms, "
                        f"worker {worker_us:.0f} µs/job, API {api_us:.0f} µs/job, "
                        f"{stored} lines stored for its last job",
                        flush=True,
                    )
    await redis.aclose()
    return figures


def per_line_table() -> str:
    """CPU µs per log line in this process: what logging costs, with and without tether."""
    import logging

    from tether.workers.logs import SCOPE, LogScope, LogShipper, capturing

    log = logging.getLogger("bench.chatty")
    root = logging.getLogger()

    def cost(n: int = 50_000) -> float:
        started = time.process_time()
        for i in range(n):
            log.info("step %d of job %s", i, "0123456789abcdef")
        return (time.process_time() - started) / n * 1e6

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            root.setLevel(logging.WARNING)
            results.setdefault("filtered out (root at WARNING)", []).append(cost())
            root.setLevel(logging.INFO)
            null = logging.NullHandler()
            root.addHandler(null)
            results.setdefault("INFO, to a NullHandler", []).append(cost())
            to_file = logging.FileHandler(Path(tmp) / "lines.log")
            to_file.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            root.addHandler(to_file)
            results.setdefault("INFO, to a file, formatted", []).append(cost(20_000))
            root.removeHandler(to_file)
            to_file.close()
            root.removeHandler(null)
            root.setLevel(logging.WARNING)
            shipper = LogShipper(None, max_lines=10**9)
            with capturing(logging.INFO):
                token = SCOPE.set(LogScope(shipper, "job", "token", 1))
                results.setdefault("INFO, captured by tether", []).append(cost())
                SCOPE.reset(token)
    rows = ["| one log.info line | CPU |", "|---|---|"]
    rows += [f"| {what} | {statistics.median(v):.2f} µs |" for what, v in results.items()]
    return "\n".join(rows)


def table(figures: dict[str, dict[str, list[float]]]) -> str:
    med = {k: {name: statistics.median(v) for name, v in f.items()} for k, f in figures.items()}
    rows = [
        "| jobs | jobs/s | p50 enqueue to result | worker CPU / job | API CPU / job |",
        "|---|---|---|---|---|",
    ]
    for kind, label in (("quiet", "log nothing"), ("chatty", "log 10 lines")):
        m = med[kind]
        rows.append(
            f"| {label} | {m['rate']:,.0f} | {m['p50']:.2f} ms | {m['worker_us']:.0f} µs "
            f"| {m['api_us']:.0f} µs |"
        )
    q, c = med["quiet"], med["chatty"]
    rows.append(
        f"| cost of 10 lines | {q['rate'] / c['rate'] - 1:+.1%} time per job "
        f"| {c['p50'] / q['p50'] - 1:+.1%} "
        f"| {c['worker_us'] / q['worker_us'] - 1:+.1%} | {c['api_us'] / q['api_us'] - 1:+.1%} |"
    )
    return "\n".join(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per throughput run")
    parser.add_argument("--runs", type=int, default=5, help="runs per kind (median)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--max-jobs", type=int, default=100, help="concurrency per worker")
    parser.add_argument("--samples", type=int, default=200, help="single jobs per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-bench-logs-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendfsync="always").start()
        try:
            logs = Path(tmp) / "logs"
            logs.mkdir()
            figures = await bench(args, server.url, logs)
        finally:
            server.stop()
    print()
    print(
        f"{args.jobs} jobs per run, {args.workers} workers x {args.max_jobs}, "
        f"median of {args.runs} runs"
    )
    print(table(figures))
    print()
    print(per_line_table())


if __name__ == "__main__":
    asyncio.run(main())
