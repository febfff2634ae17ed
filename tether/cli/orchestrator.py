"""``tether orchestrator``: the time-driven transitions (delayed jobs coming due, expired
leases, dead machines, workflow timers and timeouts). Run as many as you like: replicas
divide the partitions between them by lease (N replicas do N times the work; one that
dies has its partitions taken over within two leases), and every pass is made of atomic
scripts that check their source state, so replicas never double an effect."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tether.cli.common import EXIT_OK, positive_float, run_until_signalled

if TYPE_CHECKING:
    from tether.orchestrator.loop import Orchestrator
    from tether.queue.engine import QueueEngine

log = logging.getLogger("tether.orchestrator")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "orchestrator",
        help="run the orchestrator loop (any number of replicas)",
        description=__doc__,
    )
    parser.add_argument(
        "--redis-url",
        help="Redis to use (default: $TETHER_REDIS_URL, else the dev Redis of ./.tether, "
        "else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=0.1,
        help="seconds between passes: the latency of timers and reaping (default: 0.1)",
    )
    parser.add_argument(
        "--lease",
        type=positive_float,
        default=2.0,
        help="seconds a replica owns its partitions without renewing; a replica killed "
        "has its partitions taken over within two leases (default: 2)",
    )
    parser.add_argument(
        "--every-partition",
        action="store_true",
        help="work on every partition, not on a share divided with the other replicas",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.devstate import find_redis

    redis = find_redis(args.redis_url)
    log.info("Redis: %s", redis.describe())
    lease_ms = None if args.every_partition else int(args.lease * 1000)
    return run_until_signalled(
        lambda stop: orchestrate(redis.url, args.interval, stop, lease_ms=lease_ms)
    )


def build(engine: QueueEngine, interval: float, lease_ms: int | None = None) -> Orchestrator:
    """The orchestrator ``tether orchestrator`` runs: the job passes (delayed, leases,
    dead machines) and the workflow runs' passes, which ``Orchestrator`` adds itself; with
    ``lease_ms``, on this replica's share of the partitions (orchestrator/shares.py)."""
    from tether.orchestrator.loop import Orchestrator
    from tether.orchestrator.shares import Shares

    shares = None if lease_ms is None else Shares(engine, lease_ms=lease_ms)
    return Orchestrator(engine, interval=interval, shares=shares)


async def orchestrate(
    url: str, interval: float, stop: asyncio.Event, *, lease_ms: int | None = 2000
) -> int:
    from tether.cli.settings import queue_config
    from tether.orchestrator.namespaces import serve_namespaces
    from tether.queue.redis_py import redis_client

    redis = redis_client(url, decode_responses=True)
    try:
        log.info("orchestrator running against %s every %.3fs", url, interval)
        # One orchestrator (``build``) for every namespace (tenant) a key was made for,
        # each on this replica's share of that namespace's partitions.
        await serve_namespaces(
            redis,
            queue_config(),
            stop,
            interval=interval,
            build=lambda engine, every: build(engine, every, lease_ms),
        )
    finally:
        await redis.aclose()
    log.info("orchestrator stopped")
    return EXIT_OK
