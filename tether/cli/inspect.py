"""``tether inspect JOB_ID``: the raw Redis keys of a job, as redis-cli shows them.

Reads Redis directly, not the API, so it works when the API is down and shows exactly
what is stored. The Redis is --redis-url, else $TETHER_REDIS_URL, else the dev Redis
recorded in ./.tether/dev.json by `tether dev`, else redis://127.0.0.1:6379/0. Every
command is printed before its reply; paste it after ``redis-cli -u URL`` to run it
yourself.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tether.cli.common import EXIT_OK, UsageError


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "inspect",
        help="print the raw Redis keys of a job (direct Redis)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--redis-url",
        help="Redis to read (default: $TETHER_REDIS_URL, else the dev Redis of ./.tether, "
        "else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--namespace", default="default", help="the job's namespace (default: default)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.cli.settings import queue_config
    from tether.devstate import find_redis
    from tether.errors import RedisUnavailable, ValidationFailed
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
    redis = find_redis(args.redis_url)
    try:
        text = asyncio.run(inspect_job(redis.url, args.job_id, config, redis.source))
    except RedisUnavailable as exc:
        hint = "; is `tether dev` running?" if "dev Redis" in redis.source else ""
        raise RedisUnavailable(
            f"{exc.message} ({redis.source}{hint})", details=exc.details
        ) from exc
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


async def inspect_job(url: str, job_id: str, config: Any, source: str = "") -> str:
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
            # A run's jobs write their events to the run's timeline, not one of their own.
            fields = dict(zip(replies[0][::2], replies[0][1::2], strict=True))
            if parent := fields.get(b"parent"):
                run_id = parent.decode()
                commands[1] = ["XRANGE", config.keys.for_id(run_id).timeline(run_id), "-", "+"]
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.execute_command(*commands[1])
                    [replies[1]] = await pipe.execute()
    finally:
        await redis.aclose()
    job_hash, timeline = replies[0], replies[1]
    if not job_hash and not timeline:
        raise NotFound(
            f"no job {job_id} in {url}{f' ({source})' if source else ''}: looked for "
            f"{commands[0][1]}; is that the right Redis, and TETHER_PREFIX right?",
            details={"id": job_id},
        )
    blocks = [
        f"> {' '.join(command)}\n{render(reply)}"
        for command, reply in zip(commands, replies, strict=True)
    ]
    return "\n".join(blocks)
