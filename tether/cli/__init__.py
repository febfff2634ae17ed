"""The ``tether`` command line.

Each command group is a module of this package with a ``register(commands)`` function
that adds its sub-parser and sets ``handler``; ``GROUPS`` below is the one registry. To
add a group (say ``runs``), write ``tether/cli/runs.py`` and add ``"runs"`` to
``GROUPS``. Group modules import their heavy dependencies (Litestar, the worker) inside
their handlers, so ``tether --help`` stays fast.

Exit codes: 0 success, 1 the operation failed (e.g. no such job), 2 bad arguments,
3 the API or Redis is unreachable, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from tether.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
)
from tether.errors import ApiUnavailable, ConfigurationError, RedisUnavailable, TetherError

# The command groups, in the order ``tether --help`` lists them: one line each.
GROUPS: tuple[str, ...] = (
    "dev",
    "api",
    "orchestrator",
    "worker",
    "jobs",
    "runs",
    "schedules",
    "webhooks",
    "inspect",
    "top",
    "keys",
    "cluster",
)

__all__ = ["GROUPS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether",
        description="tether: a durable, Redis-backed control plane for jobs and workflows.",
        epilog="Configuration: TETHER_REDIS_URL (API, orchestrator, inspect, keys), TETHER_URL "
        "and TETHER_API_KEY (workers, jobs, runs). See docs/operations.md and "
        "docs/security.md.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("TETHER_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (default: $TETHER_LOG_LEVEL or INFO)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in GROUPS:
        importlib.import_module(f"tether.cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with 2 and a usage line on bad arguments
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per HTTP request would drown what matters.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"tether {args.command}: error: {exc}\n")
    except ConfigurationError as exc:
        parser.exit(EXIT_USAGE, f"tether {args.command}: error: {exc.message}\n")
    except (ApiUnavailable, RedisUnavailable) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except TetherError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
