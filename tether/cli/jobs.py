"""``tether jobs list|show|cancel``: jobs through the HTTP API ($TETHER_URL), with the
same client applications use."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tether.cli.common import EXIT_OK, call_api, positive_float, table, tag, when
from tether.protocol import JobStatus

STATUSES = [s.value for s in JobStatus]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser("jobs", help="list, show or cancel jobs (HTTP API)")
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="newest jobs first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--function")
    listing.add_argument(
        "--tag", type=tag, action="append", help="key:value given at submit (repeatable)"
    )
    listing.add_argument(
        "--limit", type=int, default=50, help="at most this many, following pages (default: 50)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON, one job per line")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one job as JSON")
    show.add_argument("job_id", metavar="ID")
    show.add_argument(
        "--wait",
        type=positive_float,
        default=None,
        help="wait up to this many seconds for the job to finish",
    )
    show.set_defaults(handler=run_show)

    cancel = actions.add_parser("cancel", help="cancel a job (a running job is told to stop)")
    cancel.add_argument("job_id", metavar="ID")
    cancel.set_defaults(handler=run_cancel)
    # `--url` may come before or after the action.
    for sub in (listing, show, cancel):
        sub.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def run_list(args: argparse.Namespace) -> int:
    jobs: list[Any] = call_api(
        args.url,
        lambda client: client.list_jobs(
            status=args.status, function=args.function, tags=dict(args.tag or []), limit=args.limit
        ),
    )
    if args.json:
        for job in jobs:
            print(job.model_dump_json())
        return EXIT_OK
    rows = [["ID", "FUNCTION", "STATUS", "ATTEMPT", "MACHINE", "ENQUEUED"]]
    rows += [
        [
            job.id,
            job.function,
            job.status,
            f"{job.attempt}/{job.max_attempts}",
            job.machine or "",
            when(job.enqueued_at),
        ]
        for job in jobs
    ]
    print(table(rows))
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    job = call_api(args.url, lambda client: client.get(args.job_id, wait=args.wait))
    print(_json(job.model_dump(mode="json")))
    return EXIT_OK


def run_cancel(args: argparse.Namespace) -> int:
    job = call_api(args.url, lambda client: client.cancel(args.job_id))
    print(f"{job.id}: {job.status}{' (cancel requested)' if job.cancel_requested else ''}")
    return EXIT_OK
