"""``tether inspect JOB_ID``: the raw Redis keys of a job, as redis-cli shows them.

Reads Redis directly ($TETHER_REDIS_URL), not the API, so it works when the API is down
and shows exactly what is stored. Every command is printed before its reply; paste it
after ``redis-cli -u $TETHER_REDIS_URL`` to run it yourself.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tether.cli.common import EXIT_OK, UsageError, redis_url


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "inspect",
        help="print the raw Redis keys of a job (direct Redis)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--redis-url", help="Redis to read (default: $TETHER_REDIS_URL or redis://127.0.0.1:6379/0)"
    )
    parser.add_argument(
        "--namespace", default="default", help="the job's namespace (default: default)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.cli.settings import queue_config
    from tether.errors import ValidationFailed
    from tether.queue.engine import check_id

    try:
        check_id(args.job_id, "JOB_ID")
    except ValidationFailed as exc:
        raise UsageError(exc.message) from None
    import dataclasses

    config = queue_config()
    try:
        config = dataclasses.replace(config, keys=config.keys.for_namespace(args.namespace))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    text = asyncio.run(inspect_job(redis_url(args.redis_url), args.job_id, config))
    print(text)
    return EXIT_OK


def job_commands(job_id: str, config: Any) -> list[list[str]]:
    """The redis-cli commands that show everything stored about one job."""
    pk = config.keys.for_id(job_id)
    return [
        ["HGETALL", pk.job(job_id)],
        ["XRANGE", pk.timeline(job_id), "-", "+"],
        ["ZSCORE", pk.leases, job_id],
        ["ZSCORE", pk.delayed, job_id],
        ["PTTL", pk.job(job_id)],
    ]


async def inspect_job(url: str, job_id: str, config: Any) -> str:
    """Run the commands and render each reply the way redis-cli would."""
    from tether.cli.redis_format import render
    from tether.errors import NotFound
    from tether.queue.redis_errors import redis_errors
    from tether.queue.redis_py import redis_client

    commands = job_commands(job_id, config)
    # Raw bytes, and the flat reply of HGETALL as redis-cli sees it (no dict callback).
    redis = redis_client(url, decode_responses=False)
    for name in ("HGETALL", "XRANGE", "ZSCORE", "PTTL"):
        redis.response_callbacks.pop(name, None)
    try:
        with redis_errors():
            async with redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                replies = await pipe.execute()
    finally:
        await redis.aclose()
    job_hash, timeline = replies[0], replies[1]
    if not job_hash and not timeline:
        raise NotFound(
            f"no job {job_id} (looked for {commands[0][1]}; is TETHER_PREFIX right?)",
            details={"id": job_id},
        )
    blocks = [
        f"> {' '.join(command)}\n{render(reply)}"
        for command, reply in zip(commands, replies, strict=True)
    ]
    return "\n".join(blocks)
