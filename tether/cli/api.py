"""``tether api``: one stateless API process (run as many replicas as you like behind a
load balancer). Redis from $TETHER_REDIS_URL; every other TETHER_* setting as in
docs/operations.md."""

from __future__ import annotations

import argparse
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.api.server import serve
    from tether.api.settings import ApiSettings

    try:
        settings = ApiSettings.from_env()
    except ValueError as exc:
        raise UsageError(f"bad configuration: {exc}") from exc
    serve(args.host, args.port, settings, log_level=args.log_level.lower())
    return EXIT_OK
