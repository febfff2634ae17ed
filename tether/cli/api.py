"""``tether api``: one stateless API process (run as many replicas as you like behind a
load balancer). Redis from $TETHER_REDIS_URL; every other TETHER_* setting as in
docs/operations.md."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tether.cli.common import DEFAULT_HOST, DEFAULT_PORT, EXIT_OK, UsageError, port_number


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser("api", help="run the HTTP API", description=__doc__)
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="interface to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="port (default: 8000)"
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="UNSAFE: serve without API keys, every caller an admin (same as TETHER_NO_AUTH=1)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from tether.api.server import serve
    from tether.api.settings import ApiSettings

    try:
        settings = ApiSettings.from_env()
    except ValueError as exc:
        raise UsageError(f"bad configuration: {exc}") from exc
    if args.no_auth:
        settings = dataclasses.replace(settings, auth=False)
    if settings.auth and not asyncio.run(_any_key(settings)):
        raise UsageError(
            "no API key exists yet: make one first (tether keys create --role admin --name "
            "NAME, which talks to $TETHER_REDIS_URL), or start with --no-auth (unsafe)"
        )
    serve(args.host, args.port, settings, log_level=args.log_level.lower())
    return EXIT_OK


async def _any_key(settings: Any) -> bool:
    from tether.queue.apikeys import KeyStore
    from tether.queue.redis_py import redis_client

    redis = redis_client(settings.redis_url, decode_responses=True, socket_connect_timeout=5)
    try:
        return await KeyStore(redis, settings.queue_config().keys).any_key()
    finally:
        await redis.aclose()
