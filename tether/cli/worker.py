"""``tether worker MODULE:SETTINGS``: one worker process (a "machine") running the
functions its WorkerSettings lists, reaching the control plane only over HTTP at --url
(default: $TETHER_URL). The current directory is importable, as with arq. SIGTERM stops
it gracefully (running jobs get their grace period); a second SIGTERM stops it now."""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli.common import EXIT_OK, api_url


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser("worker", help="run a worker process", description=__doc__)
    parser.add_argument("settings", metavar="MODULE:SETTINGS", help="e.g. app.tasks:WorkerSettings")
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    parser.add_argument(
        "--machine-id",
        help="this machine's id (default: WorkerSettings.machine_id, else <host>-<pid>-<random>)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = api_url(args.url)
    # Imports the settings module and validates every setting (ConfigurationError: exit 2).
    from tether.workers.main import run_worker

    run_worker(args.settings, url=url, machine_id=args.machine_id)
    return EXIT_OK
