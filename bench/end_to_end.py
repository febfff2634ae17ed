"""End to end, side by side: tether over HTTP, arq 0.28 and saq, on one Redis server that
this script starts itself (RedisServer, a free port, AOF on; --appendfsync always, as
tether deploys it, by default).

tether runs once per HTTP client backend of its client and workers (--backends, default
fast,aiohttp,httpx; TETHER_HTTP_BACKEND, see tether/_client_http.py), one row each, to
compare the hand-written client (tether/_client_fast.py) with aiohttp's and httpx's.
The tether rows run in the interpreter that runs this script (.venv under ``make bench``,
what users install) and the peers in .venv-bench (bench/peers.py). aiohttp comes with the
dev extra (and the bench extra); without it the aiohttp row is left out, with a note.

For each system, with W worker processes of max_jobs M each (the same W and M for all):

Each system is driven by its own client, as its users would:

- throughput: N no-op jobs enqueued, timed from the first enqueue to the last result.
  tether enqueues with ``tether.AsyncClient.enqueue_many`` over HTTP (POST
  /v1/jobs/batch, 1,000 jobs per request, one request after another) and workers poll
  over HTTP; arq and saq enqueue with their own clients straight into Redis
  (asyncio.gather of N enqueues). The end is seen by checking job statuses in Redis from
  the oldest unfinished job, every 5 ms.
- enqueue-to-result latency: one job at a time, from before the enqueue to the result in
  the caller's hand. tether: ``AsyncClient.call`` (one HTTP round trip, POST
  /v1/jobs?wait=10). arq: enqueue_job then job.result(poll_delay=1 ms); saq:
  queue.apply(poll_interval=1 ms).
- dispatch latency to a waiting worker: from before the enqueue to the moment the job's
  function starts (it returns time.time(); the same clock, the same host).
- tether only, the CPU its HTTP client costs: the workers' CPU time (user + system, from
  /proc) per job over the throughput runs (batched polls and results) and over the
  one-at-a-time latency series (a poll answer and a result per job: the hot path), and
  the bench process's own CPU time (``time.process_time()``) around
  --cpu-requests sequential ``AsyncClient.get`` calls of one finished job (one GET each).

tether runs with API keys on (workers with a machine key, the client with an app key);
with --auth both (the default) the first backend also runs with ``tether api --no-auth``,
a row of its own, and the last line gives the difference: the cost of checking keys.

Each figure is the median over --runs runs of each of --rounds rounds; the systems run one
after another in each round (in reverse order every other round), so a machine that gets
busier midway weighs on all of them.
Usage:
    .venv/bin/python bench/end_to_end.py [--jobs 3000] [--runs 3] [--rounds 1] [--workers 2]
        [--only tether] [--backends fast,aiohttp,httpx] [--auth both|on]
    .venv/bin/python bench/end_to_end.py --only tether --backends fast --rounds 4  # keys

``--durability both`` starts a replica of the server (``--replicaof``) and adds a row of
tether with ``TETHER_DURABILITY=replicated`` (every batch of transitions followed by
``WAIT 1``) beside the same backend without it, and a last line with the difference:
the cost of waiting for the replica. ``--durability replicated``: every tether row so.

``--input checked`` (tether only) gives each throughput job the input
``{"user": "ada", "n": 3}`` for a function with typed arguments, so the API checks it
against their JSON schema; ``--input unchecked``, the same input for a function without
a schema: the difference is the cost of the check at the door.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from peers import peer_python
from redis.asyncio import Redis

from tether._client_http import BACKENDS
from tether.client import AsyncClient
from tether.dev import die_with_parent
from tether.errors import ApiUnavailable
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys
from tether.redis_server import RedisServer, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLI = [sys.executable, "-m", "tether.cli", "--log-level", "WARNING"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Figures:
    throughput: list[float] = field(default_factory=list)  # jobs/s per run
    e2e_p50: list[float] = field(default_factory=list)  # ms
    e2e_p99: list[float] = field(default_factory=list)
    dispatch_p50: list[float] = field(default_factory=list)
    dispatch_p99: list[float] = field(default_factory=list)
    # tether only. The workers' CPU comes from /proc in 10 ms ticks: seconds and jobs are
    # summed over all runs, not a median of per-run ratios a tick would swing.
    worker_cpu_batch: list[float] = field(default_factory=list)  # s, per throughput run
    worker_jobs_batch: list[int] = field(default_factory=list)
    worker_cpu_single: list[float] = field(default_factory=list)  # s, per latency series
    worker_jobs_single: list[int] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)  # client CPU µs per GET
    # The API process's CPU over the same series (what checking keys adds to).
    api_cpu_batch: list[float] = field(default_factory=list)
    api_cpu_single: list[float] = field(default_factory=list)

    def last_run(self) -> str:
        """The latest run's figures, for the progress output (to see the spread)."""
        return (
            f"{self.throughput[-1]:,.0f} jobs/s, e2e p50 {self.e2e_p50[-1]:.2f} ms "
            f"p99 {self.e2e_p99[-1]:.2f} ms, client {self.client_cpu[-1]:.0f} µs/GET"
        )

    def extend(self, other: Figures) -> None:
        for name, values in vars(other).items():
            getattr(self, name).extend(values)

    def add_latencies(self, e2e: list[float], dispatch: list[float]) -> None:
        self.e2e_p50.append(pct(e2e, 50))
        self.e2e_p99.append(pct(e2e, 99))
        self.dispatch_p50.append(pct(dispatch, 50))
        self.dispatch_p99.append(pct(dispatch, 99))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Procs:
    """Child processes with their output in log files; all killed on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                log = (self.logs / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log}")


@contextlib.contextmanager
def running(procs: Procs) -> Iterator[Procs]:
    try:
        yield procs
    finally:
        procs.stop_all()


def child_env(redis_url: str, max_jobs: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TETHER_REDIS_URL=redis_url,
        BENCH_REDIS_URL=redis_url,
        BENCH_MAX_JOBS=str(max_jobs),
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_all_done(
    ids: list[str], done: Callable[[list[str]], Awaitable[int]], timeout: float = 120
) -> None:
    """Jobs finish roughly in order: check a window from the first unfinished one."""
    start = 0
    deadline = time.monotonic() + timeout
    while start < len(ids):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(ids) - start} of {len(ids)} jobs unfinished after {timeout} s"
            )
        window = ids[start : start + 500]
        finished = await done(window)
        start += finished if finished == len(window) else 0
        if finished < len(window):
            await asyncio.sleep(0.005)


# -- tether ----------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux /proc; NaN elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def backend_available(backend: str) -> bool:
    return backend != "aiohttp" or importlib.util.find_spec("aiohttp") is not None


@contextlib.contextmanager
def http_backend(backend: str) -> Iterator[None]:
    """TETHER_HTTP_BACKEND for this process's client (and the children it starts)."""
    before = os.environ.get("TETHER_HTTP_BACKEND")
    os.environ["TETHER_HTTP_BACKEND"] = backend
    try:
        yield
    finally:
        if before is None:
            del os.environ["TETHER_HTTP_BACKEND"]
        else:
            os.environ["TETHER_HTTP_BACKEND"] = before


async def bench_tether(
    args: argparse.Namespace,
    redis_url: str,
    logs: Path,
    backend: str = "fast",
    auth: bool = True,
    durability: str | None = None,
) -> Figures:
    with http_backend(backend):
        return await _bench_tether(
            args, redis_url, logs, backend, auth, durability or args.durability
        )


async def _bench_tether(
    args: argparse.Namespace,
    redis_url: str,
    logs: Path,
    backend: str,
    auth: bool,
    durability: str = "async",
) -> Figures:
    figures = Figures()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = child_env(
        redis_url,
        args.max_jobs,
        TETHER_URL=url,
        TETHER_HTTP_BACKEND=backend,
        TETHER_DURABILITY=durability if durability != "both" else "async",
    )
    env.pop("TETHER_API_KEY", None)
    redis = Redis.from_url(redis_url, decode_responses=True)
    pk = Keys().partition(0)
    api_args = [*CLI, "api", "--host", "127.0.0.1", "--port", str(port)]
    worker_env, app_key = env, None
    if auth:  # an app key for the client, a machine key for the workers
        store = KeyStore(redis, Keys())
        app_key, _ = await store.create("bench-app", "app")
        machine_key, _ = await store.create("bench-machine", "machine")
        worker_env = env | {"TETHER_API_KEY": machine_key}
    else:
        api_args.append("--no-auth")
    with running(Procs(logs)) as procs:
        api_pid = procs.start("tether-api", api_args, env).pid
        procs.start("tether-orchestrator", [*CLI, "orchestrator"], env)
        workers = [
            procs.start(
                f"tether-worker-{i}", [*CLI, "worker", "tether_jobs:WorkerSettings"], worker_env
            )
            for i in range(args.workers)
        ]
        worker_pids = [proc.pid for proc in workers]
        async with AsyncClient(url, timeout=30, api_key=app_key) as client:

            async def registered() -> bool:
                procs.check_alive()
                try:
                    return len(await client.machines()) >= args.workers
                except ApiUnavailable:
                    return False

            await wait_until(registered, 60, "tether workers to register")

            async def done(window: list[str]) -> int:
                async with redis.pipeline(transaction=False) as pipe:
                    for job_id in window:
                        pipe.hget(pk.job(job_id), "status")
                    statuses = await pipe.execute()
                return sum(1 for s in statuses if s in ("completed", "failed", "dead"))

            last_id = ""
            template: dict[str, object] = {"function": "noop"}
            if args.input != "none":
                template = {"function": args.input, "input": {"user": "ada", "n": 3}}

            async def throughput(n: int) -> float:
                nonlocal last_id
                cpu_before, api_before = cpu_seconds(worker_pids), cpu_seconds([api_pid])
                started = time.perf_counter()
                ids: list[str] = []
                for offset in range(0, n, 1000):
                    batch = [template for _ in range(min(1000, n - offset))]
                    ids.extend(job.id for job in await client.enqueue_many(batch))
                await wait_all_done(ids, done)
                elapsed = time.perf_counter() - started
                # The workers' CPU for these n jobs (what stays busy after the last result,
                # heartbeats and an empty poll, is the same for every backend).
                figures.worker_cpu_batch.append(cpu_seconds(worker_pids) - cpu_before)
                figures.api_cpu_batch.append(cpu_seconds([api_pid]) - api_before)
                figures.worker_jobs_batch.append(n)
                last_id = ids[-1]
                return n / elapsed

            async def one() -> tuple[float, float]:
                sent = time.time()
                started: float = await client.call("stamp", wait=10)
                finished = time.time()
                return (finished - sent) * 1000, (started - sent) * 1000

            async def client_cpu(n: int) -> float:
                """The bench process's CPU µs per GET of one finished job (one round trip)."""
                before = time.process_time()  # user + system, finer-grained than os.times()
                for _ in range(n):
                    await client.get(last_id)
                return (time.process_time() - before) * 1e6 / n

            await throughput(min(500, args.jobs))  # warm up connections and scripts
            figures.worker_cpu_batch.clear()
            figures.api_cpu_batch.clear()
            figures.worker_jobs_batch.clear()
            for _ in range(args.runs):
                figures.throughput.append(await throughput(args.jobs))
                cpu_before, api_before = cpu_seconds(worker_pids), cpu_seconds([api_pid])
                samples = [await one() for _ in range(args.samples)]
                figures.worker_cpu_single.append(cpu_seconds(worker_pids) - cpu_before)
                figures.api_cpu_single.append(cpu_seconds([api_pid]) - api_before)
                figures.worker_jobs_single.append(args.samples)
                figures.add_latencies([s[0] for s in samples], [s[1] for s in samples])
                figures.client_cpu.append(await client_cpu(args.cpu_requests))
                print(f"    {figures.last_run()}", flush=True)
    await redis.aclose()
    return figures


# -- arq -------------------------------------------------------------------------------


async def bench_arq(args: argparse.Namespace, redis_url: str, logs: Path) -> Figures:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.constants import result_key_prefix

    figures = Figures()
    env = child_env(redis_url, args.max_jobs)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    with running(Procs(logs)) as procs:
        for i in range(args.workers):
            procs.start(f"arq-worker-{i}", [sys.executable, str(HERE / "arq_jobs.py")], env)

        async def done(window: list[str]) -> int:
            return int(await pool.exists(*(result_key_prefix + job_id for job_id in window)))

        async def throughput(n: int) -> float:
            started = time.perf_counter()
            jobs = await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(n)))
            await wait_all_done([j.job_id for j in jobs if j is not None], done)
            return n / (time.perf_counter() - started)

        async def one() -> tuple[float, float]:
            sent = time.time()
            job = await pool.enqueue_job("stamp")
            assert job is not None
            result = await job.result(timeout=10, poll_delay=0.001)
            finished = time.time()
            return (finished - sent) * 1000, (result - sent) * 1000

        await throughput(min(200, args.jobs))  # workers up and polling
        for _ in range(args.runs):
            procs.check_alive()
            figures.throughput.append(await throughput(args.jobs))
            samples = [await one() for _ in range(args.arq_samples)]
            figures.add_latencies([s[0] for s in samples], [s[1] for s in samples])
    await pool.aclose()
    return figures


# -- saq -------------------------------------------------------------------------------


async def bench_saq(args: argparse.Namespace, redis_url: str, logs: Path) -> Figures:
    from saq import Queue
    from saq.job import TERMINAL_STATUSES, Status

    figures = Figures()
    env = child_env(redis_url, args.max_jobs)
    queue = Queue.from_url(redis_url)
    await queue.connect()
    with running(Procs(logs)) as procs:
        for i in range(args.workers):
            procs.start(f"saq-worker-{i}", [sys.executable, str(HERE / "saq_jobs.py")], env)

        async def done(window: list[str]) -> int:
            jobs = await queue.jobs(window)
            # Under load saq's sweeper may mark a job "aborting": it never runs again, so it
            # counts as ended here (not as completed), or the wait would never end.
            ended = {*TERMINAL_STATUSES, Status.ABORTING}
            return sum(1 for job in jobs if job is not None and job.status in ended)

        async def throughput(n: int) -> float:
            started = time.perf_counter()
            jobs = await asyncio.gather(*(queue.enqueue("noop") for _ in range(n)))
            await wait_all_done([job.key for job in jobs if job is not None], done)
            return n / (time.perf_counter() - started)

        async def one() -> tuple[float, float]:
            sent = time.time()
            # saq's pub/sub wait (job.refresh(until_complete=...)) misses a job that
            # finishes before it subscribes; poll every 1 ms instead, as for arq.
            result = await queue.apply("stamp", timeout=10, poll_interval=0.001)
            finished = time.time()
            return (finished - sent) * 1000, (result - sent) * 1000

        await throughput(min(200, args.jobs))
        for _ in range(args.runs):
            procs.check_alive()
            figures.throughput.append(await throughput(args.jobs))
            samples = [await one() for _ in range(args.samples)]
            figures.add_latencies([s[0] for s in samples], [s[1] for s in samples])
    await queue.disconnect()
    return figures


# -- report ----------------------------------------------------------------------------


def table(results: dict[str, Figures]) -> str:
    head = (
        "| system | no-op jobs/s | enqueue→result p50 | p99 | dispatch p50 | p99 "
        "| worker CPU per job, batch | single | client CPU per GET |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )

    def per_job(seconds: list[float], jobs: list[int]) -> str:
        return f"{sum(seconds) * 1000 / sum(jobs):.3f} ms" if jobs else "-"

    rows = [
        f"| {name} | {median(f.throughput):,.0f} | {median(f.e2e_p50):.2f} ms | "
        f"{median(f.e2e_p99):.2f} ms | {median(f.dispatch_p50):.2f} ms | "
        f"{median(f.dispatch_p99):.2f} ms | "
        f"{per_job(f.worker_cpu_batch, f.worker_jobs_batch)} | "
        f"{per_job(f.worker_cpu_single, f.worker_jobs_single)} | "
        f"{f'{median(f.client_cpu):.0f} µs' if f.client_cpu else '-'} |"
        for name, f in results.items()
    ]
    return "\n".join([head, *rows])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per throughput run")
    parser.add_argument("--runs", type=int, default=3, help="runs per system (median)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per system")
    parser.add_argument("--max-jobs", type=int, default=100, help="concurrency per worker")
    parser.add_argument("--samples", type=int, default=200, help="single jobs per run")
    parser.add_argument(
        "--arq-samples",
        type=int,
        default=10,
        help="single jobs per run for arq (its 0.5 s poll makes each take ~0.25-0.5 s)",
    )
    parser.add_argument("--only", choices=["tether", "arq", "saq"], action="append")
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    parser.add_argument(
        "--input",
        choices=["none", "checked", "unchecked"],
        default="none",
        help="tether throughput jobs: no input, or an input checked (or not) at the door",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="tether's HTTP client backends, one row each (TETHER_HTTP_BACKEND)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="times every system runs, one after another"
    )
    parser.add_argument(
        "--cpu-requests", type=int, default=1000, help="GETs per run for the client CPU figure"
    )
    parser.add_argument(
        "--auth",
        choices=["both", "on"],
        default="both",
        help="both: also run the first backend with `tether api --no-auth` (default: both)",
    )
    parser.add_argument(
        "--durability",
        choices=["async", "replicated", "both"],
        default="async",
        help="tether's TETHER_DURABILITY (a replica is started unless async); both: a row each",
    )
    # Internal: run one peer's bench in this (the peers') interpreter, print its figures.
    parser.add_argument("--peer", choices=["arq", "saq"], help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--logs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        bench = bench_arq if args.peer == "arq" else bench_saq
        figures = await bench(args, args.redis_url, Path(args.logs))
        print(json.dumps(dataclasses.asdict(figures)))
        return
    systems: dict[str, Callable[[argparse.Namespace, str, Path], Awaitable[Figures]]] = {}
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            parser.error(f"--backends: {backend!r} is not one of {', '.join(BACKENDS)}")
        if not backend_available(backend):
            print(f"tether on {backend}: left out ({backend} is not installed)", flush=True)
            continue
        systems[f"tether (HTTP, {backend})"] = functools.partial(bench_tether, backend=backend)
        if args.auth == "both" and not any("--no-auth" in name for name in systems):
            systems[f"tether (HTTP, {backend}, --no-auth)"] = functools.partial(
                bench_tether, backend=backend, auth=False
            )
        if args.durability == "both" and not any("replicated" in name for name in systems):
            systems[f"tether (HTTP, {backend}, replicated)"] = functools.partial(
                bench_tether, backend=backend, durability="replicated"
            )
    systems.update({"arq 0.28": bench_arq, "saq": bench_saq})
    wanted = args.only or ["tether", "arq", "saq"]
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendfsync=args.appendfsync).start()
        replica = None
        if args.durability != "async":
            replica = RedisServer(
                Path(tmp) / "replica",
                appendfsync=args.appendfsync,
                extra_args=["--replicaof", "127.0.0.1", str(server.port)],
            ).start()
        logs = Path(tmp)
        print(
            f"Redis {server.binary.name} on port {server.port} (AOF {args.appendfsync}); "
            f"{args.workers} worker processes x max_jobs {args.max_jobs} per system; "
            f"{args.jobs} jobs per throughput run; median of {args.runs} runs; "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        results: dict[str, Figures] = {}
        try:
            for round_ in range(args.rounds):
                in_order = list(systems.items())
                for name, bench in in_order if round_ % 2 == 0 else in_order[::-1]:
                    if name.split()[0] not in wanted:
                        continue
                    began = time.monotonic()
                    if name.startswith("tether"):
                        figures = await bench(args, server.url, logs)
                    else:
                        figures = in_peer_venv(name.split()[0], server.url, logs)
                    results.setdefault(name, Figures()).extend(figures)
                    print(
                        f"  {name}: round {round_ + 1} done in {time.monotonic() - began:.1f} s",
                        flush=True,
                    )
                    flush = Redis.from_url(server.url)
                    await flush.flushall()
                    await flush.aclose()
        finally:
            if replica is not None:
                replica.stop()
            server.stop()
    print()
    print(table(results))
    replicated = next((name for name in results if name.endswith("replicated)")), None)
    if replicated is not None:
        plain, waited = results[replicated.replace(", replicated", "")], results[replicated]
        print()
        print(
            "replicated vs async durability (WAIT 1 after each batch of transitions): "
            f"jobs/s {100 * (median(waited.throughput) / median(plain.throughput) - 1):+.1f}%, "
            f"enqueue→result p50 {median(waited.e2e_p50):.2f} vs {median(plain.e2e_p50):.2f} ms "
            f"({100 * (median(waited.e2e_p50) / median(plain.e2e_p50) - 1):+.1f}%), "
            "dispatch p50 "
            f"{100 * (median(waited.dispatch_p50) / median(plain.dispatch_p50) - 1):+.1f}%"
        )
    off_name = next((name for name in results if name.endswith("--no-auth)")), None)
    if off_name is not None:
        on, off = results[off_name.replace(", --no-auth", "")], results[off_name]
        print()
        print(
            "keys on vs --no-auth: "
            f"jobs/s {100 * (median(on.throughput) / median(off.throughput) - 1):+.1f}%, "
            f"enqueue→result p50 {100 * (median(on.e2e_p50) / median(off.e2e_p50) - 1):+.1f}%, "
            f"dispatch p50 {100 * (median(on.dispatch_p50) / median(off.dispatch_p50) - 1):+.1f}%"
        )

        def api_ms(f: Figures, single: bool) -> float:
            cpu = f.api_cpu_single if single else f.api_cpu_batch
            jobs = f.worker_jobs_single if single else f.worker_jobs_batch
            return sum(cpu) * 1000 / sum(jobs)

        print(
            "API CPU per job, keys on vs --no-auth: "
            f"one at a time {api_ms(on, True):.3f} vs {api_ms(off, True):.3f} ms "
            f"({100 * (api_ms(on, True) / api_ms(off, True) - 1):+.1f}%), "
            f"batches {api_ms(on, False):.3f} vs {api_ms(off, False):.3f} ms "
            f"({100 * (api_ms(on, False) / api_ms(off, False) - 1):+.1f}%)"
        )


def in_peer_venv(peer: str, redis_url: str, logs: Path) -> Figures:
    """Run one peer's bench in the peers' virtualenv (bench/peers.py): this script again,
    there, with ``--peer``; its figures come back as JSON on its last line."""
    argv = [peer_python(), str(Path(__file__).resolve()), *sys.argv[1:]]
    argv += ["--peer", peer, "--redis-url", redis_url, "--logs", str(logs)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"{peer} bench failed in {peer_python()} (run `make bench` to make the peers' "
            f"venv):\n{done.stderr[-2000:]}"
        )
    return Figures(**json.loads(done.stdout.strip().splitlines()[-1]))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: children stopped, Redis stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    asyncio.run(main())
