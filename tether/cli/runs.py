"""``tether runs list|show|approve|deny|signal|cancel|retry``: workflow runs through the
HTTP API ($TETHER_URL), with the same client applications use."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tether.cli.common import EXIT_OK, UsageError, call_api, positive_float, table, tag, when
from tether.protocol import RunStatus

STATUSES = [s.value for s in RunStatus]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "runs", help="list, show, approve, deny, signal, cancel or retry workflow runs"
    )
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="newest runs first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--workflow")
    listing.add_argument("--parent", metavar="RUN_ID", help="only the child runs of this run")
    listing.add_argument(
        "--tag", type=tag, action="append", help="key:value given at start (repeatable)"
    )
    listing.add_argument(
        "--limit", type=int, default=50, help="at most this many, following pages (default: 50)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON, one run per line")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one run as JSON (with --timeline, its events)")
    show.add_argument("run_id", metavar="ID")
    show.add_argument(
        "--wait",
        type=positive_float,
        default=None,
        help="wait up to this many seconds for the run to finish",
    )
    show.add_argument("--timeline", action="store_true", help="print its timeline too")
    show.add_argument(
        "--tree",
        action="store_true",
        help="print it as a tree of activations, steps, child jobs and waits with durations",
    )
    show.set_defaults(handler=run_show)

    subs = [listing, show]
    for name, verb in (("approve", "approve"), ("deny", "deny")):
        decide = actions.add_parser(name, help=f"{verb} an approval a run waits for")
        decide.add_argument("run_id", metavar="ID")
        decide.add_argument("key", metavar="KEY")
        decide.add_argument("--comment")
        decide.add_argument("--data", help="JSON data to attach to the decision")
        decide.set_defaults(handler=run_decide, approved=name == "approve")
        subs.append(decide)

    signal = actions.add_parser("signal", help="send a signal to a run")
    signal.add_argument("run_id", metavar="ID")
    signal.add_argument("name", metavar="NAME")
    signal.add_argument(
        "payload",
        metavar="JSON",
        nargs="?",
        default="null",
        help="the signal's payload as JSON (default: null)",
    )
    signal.set_defaults(handler=run_signal)
    subs.append(signal)

    for name, text in (
        ("cancel", "cancel a run and its child jobs"),
        ("retry", "resume a failed run where its unhandled failure happened"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("run_id", metavar="ID")
        sub.set_defaults(handler=run_cancel if name == "cancel" else run_retry)
        subs.append(sub)
    # `--url` may come before or after the action.
    for sub in subs:
        sub.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from exc


def _waiting(run: Any) -> str:
    w = run.waiting_on or {}
    if not w:
        return ""
    name = w.get("key") or w.get("name") or w.get("workflow") or ""
    return f"{w.get('kind')}{':' + str(name) if name else ''}"


def run_list(args: argparse.Namespace) -> int:
    runs = call_api(
        args.url,
        lambda c: c.list_runs(
            status=args.status,
            workflow=args.workflow,
            tags=dict(args.tag or []),
            limit=args.limit,
            parent=args.parent,
        ),
    )
    if args.json:
        for run in runs:
            print(run.model_dump_json())
        return EXIT_OK
    rows = [["ID", "WORKFLOW", "VERSION", "STATUS", "WAITING ON", "CREATED"]]
    rows += [
        [
            run.id,
            run.workflow,
            str(run.version or ""),
            run.status,
            _waiting(run),
            when(run.created_at),
        ]
        for run in runs
    ]
    print(table(rows))
    return EXIT_OK


def _print_run(run: Any) -> None:
    print(json.dumps(run.model_dump(mode="json"), indent=2))


def run_show(args: argparse.Namespace) -> int:
    async def op(client: Any) -> tuple[Any, Any]:
        run = await client.get_run(args.run_id, wait=args.wait)
        events = await client.timeline(args.run_id) if args.timeline or args.tree else None
        return run, events

    run, events = call_api(args.url, op)
    if args.tree:
        from rich.console import Console

        from tether.cli.run_tree import build, render

        Console().print(render(build(f"{run.id} ({run.workflow})", events or [])))
        return EXIT_OK
    _print_run(run)
    for event in events or []:
        fields = " ".join(f"{k}={v}" for k, v in event.fields.items())
        print(f"{when(event.at)}  {event.event:<20} {fields}")
    return EXIT_OK


def run_decide(args: argparse.Namespace) -> int:
    data = _json_arg(args.data, "--data")
    run = call_api(
        args.url,
        lambda c: c.approve(args.run_id, args.key, args.approved, comment=args.comment, data=data),
    )
    verb = "approved" if args.approved else "denied"
    print(f"{run.id}: {args.key} {verb}; run is {run.status}")
    return EXIT_OK


def run_signal(args: argparse.Namespace) -> int:
    payload = _json_arg(args.payload, "the payload")
    run = call_api(args.url, lambda c: c.signal(args.run_id, args.name, payload))
    print(f"{run.id}: signal {args.name} sent; run is {run.status}")
    return EXIT_OK


def run_cancel(args: argparse.Namespace) -> int:
    run = call_api(args.url, lambda c: c.cancel_run(args.run_id))
    print(f"{run.id}: {run.status}")
    return EXIT_OK


def run_retry(args: argparse.Namespace) -> int:
    run = call_api(args.url, lambda c: c.retry_run(args.run_id))
    print(f"{run.id}: {run.status}")
    return EXIT_OK
