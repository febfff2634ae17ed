"""``tether logs ID [--follow]``: the log lines of a job or a run through the HTTP API
($TETHER_URL), with the same client applications use. ID is a run's if a run has that
id, else a job's (``--run`` / ``--job`` say which). ``--follow`` keeps printing lines as
they arrive (long polls) until the job or run ends. Lines lost on the way (a worker's
full buffer, the stream's bound) are said at the end."""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli.common import EXIT_OK, call_api
from tether.errors import NotFound
from tether.protocol import LogLine, LogPage

LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "cyan",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "logs", help="print (and follow) the log lines of a job or a run", description=__doc__
    )
    parser.add_argument("record_id", metavar="ID")
    parser.add_argument("--url", help="the API (default: $TETHER_URL or http://127.0.0.1:8000)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", action="store_true", help="ID is a run's")
    which.add_argument("--job", action="store_true", help="ID is a job's")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing lines until it ends"
    )
    parser.add_argument("--limit", type=int, default=1000, help="lines per request (default: 1000)")
    parser.add_argument("--json", action="store_true", help="print JSON, one line per line")
    parser.set_defaults(handler=run)


def render(line: LogLine) -> Any:
    """One line as rich text (never markup: a log line is printed as it is)."""
    from rich.text import Text

    text = Text()
    text.append((line.ts or line.at).strftime("%H:%M:%S.%f")[:-3], style="dim")
    text.append(" ")
    text.append(f"{line.level:<7}", style=LEVEL_STYLES.get(line.level, ""))
    text.append(" ")
    where = []
    if line.step is not None:
        where.append(f"step {line.step} {line.step_name or ''}".rstrip())
    if line.attempt and line.attempt > 1:
        where.append(f"attempt {line.attempt}")
    if where:
        text.append("[" + ", ".join(where) + "] ", style="magenta")
    if line.logger:
        text.append(line.logger + ": ", style="blue")
    text.append(line.message)
    if line.fields:
        text.append(" " + " ".join(f"{k}={v}" for k, v in line.fields.items()), style="dim")
    if line.exc:
        text.append("\n" + line.exc.rstrip(), style="red")
    return text


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)

    async def op(client: Any) -> LogPage:
        is_run = await _is_run(client, args)
        after: str | None = None
        wait = 20.0 if args.follow else None
        while True:
            page: LogPage = await client.logs(
                args.record_id, run=is_run, after=after, limit=args.limit, wait=wait
            )
            for line in page.lines:
                if args.json:
                    print(line.model_dump_json(), flush=True)
                else:
                    console.print(render(line))
            after = page.cursor
            if not page.lines and (not args.follow or page.finished):
                return page
            if not args.follow and len(page.lines) < args.limit:
                return page

    try:
        last: LogPage = call_api(args.url, op)
    except KeyboardInterrupt:
        return EXIT_OK
    lost = [f"{n} {what}" for n, what in ((last.dropped, "dropped by a full worker buffer"),
            (last.trimmed, "cut by the stream's bound")) if n]  # fmt: skip
    if lost and not args.json:
        console.print(f"[yellow]lines lost: {', '.join(lost)}[/yellow]")
    return EXIT_OK


async def _is_run(client: Any, args: argparse.Namespace) -> bool:
    if args.run or args.job:
        return bool(args.run)
    try:
        await client.logs(args.record_id, run=True, limit=1)
        return True
    except NotFound:
        return False
