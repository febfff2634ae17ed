"""``tether webhooks create|list|show|deliveries|delete``: a namespace's webhooks through
the HTTP API ($TETHER_URL, with an admin key in $TETHER_API_KEY). See docs/webhooks.md."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tether.cli.common import EXIT_OK, call_api, table, when

EVENTS = ("run.awaiting_approval", "run.completed", "run.failed", "run.cancelled", "job.failed")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "webhooks", help="create, list, show or delete webhooks and see their deliveries"
    )
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="POST run events to a URL (prints the secret)")
    create.add_argument("target", metavar="URL", help="where to POST (http or https)")
    create.add_argument(
        "--event",
        dest="events",
        action="append",
        choices=EVENTS,
        help="an event to send (repeatable; default: awaiting_approval, completed, failed)",
    )
    create.add_argument("--secret", help="sign with this secret (default: a new random one)")
    create.add_argument("--description", default="", help="a note for people")
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="every webhook of the namespace")
    listing.add_argument("--json", action="store_true", help="print JSON, one per line")
    listing.set_defaults(handler=run_list)

    subs = [create, listing]
    for action, helptext, handler in (
        ("show", "one webhook as JSON (without its secret)", run_show),
        ("deliveries", "its newest deliveries: state, attempts, last answer", run_deliveries),
        ("delete", "delete it (deliveries not yet made are dropped)", run_delete),
    ):
        sub = actions.add_parser(action, help=helptext)
        sub.add_argument("id", metavar="ID")
        sub.set_defaults(handler=handler)
        subs.append(sub)
        if action == "deliveries":
            sub.add_argument("--limit", type=int, default=50, help="at most this many (1-200)")
            sub.add_argument("--json", action="store_true", help="print JSON, one per line")
    # `--url` may come before or after the action.
    for sub in subs:
        sub.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def run_create(args: argparse.Namespace) -> int:
    hook = call_api(
        args.url,
        lambda client: client.create_webhook(
            args.target, events=args.events, secret=args.secret, description=args.description
        ),
    )
    print(f"webhook {hook.id}: {' '.join(hook.events)} -> {hook.url}")
    print(f"secret (shown once): {hook.secret}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    hooks: list[Any] = call_api(args.url, lambda client: client.list_webhooks())
    if args.json:
        for h in hooks:
            print(h.model_dump_json())
        return EXIT_OK
    rows = [["ID", "URL", "EVENTS", "CREATED", "BY"]]
    rows += [[h.id, h.url, ",".join(h.events), when(h.created_at), h.created_by] for h in hooks]
    print(table(rows))
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    hook = call_api(args.url, lambda client: client.get_webhook(args.id))
    print(json.dumps(hook.model_dump(mode="json"), indent=2))
    return EXIT_OK


def run_deliveries(args: argparse.Namespace) -> int:
    found: list[Any] = call_api(
        args.url, lambda client: client.webhook_deliveries(args.id, limit=args.limit)
    )
    if args.json:
        for d in found:
            print(d.model_dump_json())
        return EXIT_OK
    rows = [["DELIVERY", "EVENT", "RUN/JOB", "STATE", "ATTEMPTS", "LAST", "NEXT TRY"]]
    rows += [
        [
            d.id,
            d.event,
            d.run or d.job or "",
            d.state,
            str(d.attempts),
            str(d.last_status_code or d.last_error[:40] or "-"),
            when(d.next_try_at) if d.state == "retrying" else "-",
        ]
        for d in found
    ]
    print(table(rows))
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    call_api(args.url, lambda client: client.delete_webhook(args.id))
    print(f"{args.id}: deleted")
    return EXIT_OK
