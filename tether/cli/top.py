"""``tether top``: the plane at a glance, refreshed in place (Ctrl-C to quit).

- Queues (GET /v1/functions): ready jobs and machines serving each function; and, from
  the ``/metrics`` of the API process that answers, attempts finished, per second (between
  two frames) and p50/p99 of queue wait and of run time (like Prometheus'
  ``histogram_quantile``; since that process started: one replica's share).
- Machines (GET /v1/machines): last heartbeat, jobs held, functions.
- Runs waiting on a person (GET /v1/runs?status=waiting).

It reads the HTTP API ($TETHER_URL), as the dashboard does. ``--once`` prints one frame
and exits (for scripts and for a terminal without cursor control).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.cli.common import EXIT_OK, api_url, positive_float, run_until_signalled

Buckets = list[tuple[float, float]]  # (upper bound, cumulative count)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "top",
        help="queues, rates and machines, refreshed in place (HTTP API)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    parser.add_argument(
        "--interval", type=positive_float, default=2.0, help="seconds between frames (2)"
    )
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = api_url(args.url)
    if args.once:
        from rich.console import Console

        snapshot = asyncio.run(_collect_once(url))
        Console().print(render(snapshot, None))
        return EXIT_OK
    return run_until_signalled(lambda stop: watch(url, args.interval, stop))


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile of a cumulative histogram, linear within the bucket that holds it
    (as Prometheus computes it); None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


@dataclass
class Snapshot:
    at: float  # time.monotonic() when read
    functions: list[Any]
    machines: list[Any]
    waiting_on_people: int
    finished: dict[str, float] = field(default_factory=dict)
    wait: dict[str, Buckets] = field(default_factory=lambda: defaultdict(list))
    run: dict[str, Buckets] = field(default_factory=lambda: defaultdict(list))


async def collect(client: Any) -> Snapshot:
    """One frame's worth of reads (four requests)."""
    from prometheus_client.parser import text_string_to_metric_families

    functions, machines, waiting, text = await asyncio.gather(
        client.functions(),
        client.machines(),
        client.list_runs(status="waiting", limit=1000),
        client.metrics(),
    )
    snap = Snapshot(
        at=time.monotonic(),
        functions=functions,
        machines=machines,
        waiting_on_people=sum(1 for r in waiting if (r.waiting_on or {}).get("kind") == "approval"),
    )
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            fn = s.labels.get("function")
            if fn is None:
                continue
            if s.name == "tether_jobs_finished_total":
                snap.finished[fn] = snap.finished.get(fn, 0.0) + s.value
            elif s.name in (
                "tether_job_queue_wait_seconds_bucket",
                "tether_job_run_seconds_bucket",
            ):
                target = snap.wait if "queue_wait" in s.name else snap.run
                target[fn].append((float(s.labels["le"]), s.value))
    return snap


async def _collect_once(url: str) -> Snapshot:
    from tether.client import AsyncClient

    async with AsyncClient(url) as client:
        return await collect(client)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _ago(moment: datetime) -> str:
    seconds = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def render(snap: Snapshot, previous: Snapshot | None) -> Any:
    """The frame: a rich renderable (queues, machines, a footer)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    queues = Table(title="Queues", title_justify="left", expand=True)
    for name in ("function", "ready", "machines", "finished", "/s"):
        queues.add_column(name, justify="left" if name == "function" else "right")
    for name in ("wait p50", "wait p99", "run p50", "run p99"):
        queues.add_column(name, justify="right")
    for f in snap.functions:
        done = snap.finished.get(f.name)
        rate = "—"
        if previous is not None and done is not None and snap.at > previous.at:
            rate = f"{(done - previous.finished.get(f.name, 0.0)) / (snap.at - previous.at):.1f}"
        queues.add_row(
            f.name,
            str(f.queued),
            str(len(f.machines)),
            "—" if done is None else f"{done:.0f}",
            rate,
            _seconds(histogram_quantile(0.5, snap.wait.get(f.name, []))),
            _seconds(histogram_quantile(0.99, snap.wait.get(f.name, []))),
            _seconds(histogram_quantile(0.5, snap.run.get(f.name, []))),
            _seconds(histogram_quantile(0.99, snap.run.get(f.name, []))),
        )
    machines = Table(title="Machines", title_justify="left", expand=True)
    for name in ("machine", "last heartbeat", "jobs held", "functions"):
        machines.add_column(name, justify="right" if name == "jobs held" else "left")
    for m in snap.machines:
        machines.add_row(m.id, _ago(m.last_heartbeat), str(m.jobs), ", ".join(m.functions))
    footer = Text(
        f"{snap.waiting_on_people} run(s) waiting on a person · "
        f"{datetime.now().strftime('%H:%M:%S')} · finished, rates and percentiles: "
        "the API process that answered, since it started"
    )
    return Group(queues, machines, footer)


async def watch(url: str, interval: float, stop: asyncio.Event) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from tether.client import AsyncClient
    from tether.errors import TetherError

    async with AsyncClient(url) as client:
        previous: Snapshot | None = None
        with Live(console=Console(), auto_refresh=False) as live:
            while not stop.is_set():
                try:
                    snap = await collect(client)
                except TetherError as exc:  # keep watching: the API may come back
                    live.update(Text(f"{url}: {exc}"), refresh=True)
                else:
                    live.update(render(snap, previous), refresh=True)
                    previous = snap
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
    return EXIT_OK
