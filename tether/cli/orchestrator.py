"""``tether orchestrator``: the time-driven transitions (delayed jobs coming due, expired
leases, dead machines, workflow timers and timeouts). Run as many as you like: every pass
is made of atomic scripts that check their source state, so replicas never double an
effect."""

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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.devstate import find_redis

    redis = find_redis(args.redis_url)
    log.info("Redis: %s", redis.describe())
    return run_until_signalled(lambda stop: orchestrate(redis.url, args.interval, stop))


def build(engine: QueueEngine, interval: float) -> Orchestrator:
    """The orchestrator ``tether orchestrator`` runs: the job passes (delayed, leases,
    dead machines) and the workflow runs' passes, which ``Orchestrator`` adds itself."""
    from tether.orchestrator.loop import Orchestrator

    return Orchestrator(engine, interval=interval)


async def orchestrate(url: str, interval: float, stop: asyncio.Event) -> int:
    from tether.cli.settings import queue_config
    from tether.orchestrator.namespaces import serve_namespaces
    from tether.queue.redis_py import redis_client

    redis = redis_client(url, decode_responses=True)
    try:
        log.info("orchestrator running against %s every %.3fs", url, interval)
        # One orchestrator (``build``) for every namespace (tenant) a key was made for.
        await serve_namespaces(redis, queue_config(), stop, interval=interval, build=build)
    finally:
        await redis.aclose()
    log.info("orchestrator stopped")
    return EXIT_OK
