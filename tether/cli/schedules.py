"""``tether schedules list|show|pause|resume|trigger|delete``: schedules through the HTTP
API ($TETHER_URL), with the same client applications use. Schedules are declared with
``POST /v1/schedules`` (``Client.schedule``) or a worker's ``cron_jobs``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tether.cli.common import EXIT_OK, call_api, table, when


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "schedules", help="list, show, pause, resume, trigger or delete schedules (HTTP API)"
    )
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every schedule, by name")
    listing.add_argument("--json", action="store_true", help="print JSON, one per line")
    listing.set_defaults(handler=run_list)
    subs = [listing]
    for action, helptext, handler in (
        ("show", "one schedule as JSON", run_show),
        ("pause", "stop firing its ticks (a trigger still starts it)", run_pause),
        ("resume", "fire its ticks again, from the first one after now", run_resume),
        ("trigger", "start its job or run now", run_trigger),
        ("delete", "delete it (what it started is left as it is)", run_delete),
    ):
        sub = actions.add_parser(action, help=helptext)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(handler=handler)
        subs.append(sub)
        if action == "trigger":
            sub.add_argument("--key", help="the same key starts the job or run once")
    # `--url` may come before or after the action.
    for sub in subs:
        sub.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _every(schedule: Any) -> str:
    if schedule.cron:
        zone = "" if schedule.timezone == "UTC" else f" ({schedule.timezone})"
        return f"cron {schedule.cron}{zone}"
    return f"every {schedule.every:g}s"


def run_list(args: argparse.Namespace) -> int:
    schedules: list[Any] = call_api(args.url, lambda client: client.list_schedules())
    if args.json:
        for s in schedules:
            print(s.model_dump_json())
        return EXIT_OK
    rows = [["NAME", "STARTS", "WHEN", "NEXT", "FIRED", "MISSED", "STATE"]]
    rows += [
        [
            s.name,
            f"job {s.function}" if s.function else f"run {s.workflow}",
            _every(s),
            when(s.next_fire),
            str(s.fired),
            str(s.missed),
            "paused" if s.paused else "active",
        ]
        for s in schedules
    ]
    print(table(rows))
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    schedule = call_api(args.url, lambda client: client.get_schedule(args.name))
    print(json.dumps(schedule.model_dump(mode="json"), indent=2))
    return EXIT_OK


def run_pause(args: argparse.Namespace) -> int:
    schedule = call_api(args.url, lambda client: client.pause_schedule(args.name))
    print(f"{schedule.name}: paused")
    return EXIT_OK


def run_resume(args: argparse.Namespace) -> int:
    schedule = call_api(args.url, lambda client: client.resume_schedule(args.name))
    print(f"{schedule.name}: active, next tick {when(schedule.next_fire)} UTC")
    return EXIT_OK


def run_trigger(args: argparse.Namespace) -> int:
    fired = call_api(args.url, lambda client: client.trigger_schedule(args.name, key=args.key))
    print(
        f"{fired.name}: {'started' if fired.created else 'already started'} {fired.kind} {fired.id}"
    )
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    call_api(args.url, lambda client: client.delete_schedule(args.name))
    print(f"{args.name}: deleted")
    return EXIT_OK
