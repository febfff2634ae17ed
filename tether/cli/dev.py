"""``tether dev``: Redis (AOF in ./.tether/), the API and an orchestrator in one command;
with --example-worker, the example worker too. Ctrl-C stops everything.

One ``tether dev`` per data folder (a second one refuses, naming the first one's PID).
The dev Redis keeps the port recorded in ./.tether/dev.json across restarts, and
``tether inspect`` run from this folder finds it there."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tether.cli.common import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    UsageError,
    port_number,
    run_until_signalled,
)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "dev",
        help="run Redis, the API and an orchestrator locally",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="API host (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="API port (default: 8000)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(".tether"),
        help="folder for Redis data and AOF (default: ./.tether)",
    )
    parser.add_argument(
        "--redis-port",
        type=port_number,
        default=None,
        help="port of the dev Redis server (default: the one recorded in DATA/dev.json, "
        "else 6399, else a free port)",
    )
    parser.add_argument(
        "--example-worker",
        action="store_true",
        help="also run examples/hello.py's worker (functions: hello)",
    )
    parser.add_argument(
        "--worker",
        action="append",
        default=[],
        metavar="MODULE:SETTINGS",
        help="also run this worker (repeatable), e.g. app.tasks:WorkerSettings",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tether.dev import EXAMPLE_WORKER, DevError, DevMode, examples_root
    from tether.devstate import DevLocked
    from tether.redis_server import ServerBinaryNotFound

    workers = list(args.worker)
    if args.example_worker:
        if not (examples_root() / "examples" / "hello.py").exists():
            raise UsageError("--example-worker needs the examples/ folder of a tether checkout")
        workers.insert(0, EXAMPLE_WORKER)
    for spec in workers:
        if ":" not in spec:
            raise UsageError(f"--worker takes MODULE:SETTINGS, not {spec!r}")
    mode = DevMode(
        host=args.host,
        port=args.port,
        data=args.data,
        redis_port=args.redis_port,
        workers=workers,
        log_level=args.log_level,
    )
    try:
        return run_until_signalled(mode.run)
    except (DevError, DevLocked, ServerBinaryNotFound) as exc:
        print(f"error: {exc}", flush=True)
        return 1
