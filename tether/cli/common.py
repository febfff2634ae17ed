"""What every command shares: configuration from the environment, exit codes, and
running an async main until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tether._client_http import resolve_url
from tether.errors import ConfigurationError

EXIT_OK = 0
EXIT_FAILED = 1  # the operation was refused or failed (no such job, ...)
EXIT_USAGE = 2  # bad arguments (argparse uses 2 as well)
EXIT_UNAVAILABLE = 3  # the API or Redis cannot be reached
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it

# Defaults of every setting; docs/operations.md has the same table.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class UsageError(Exception):
    """An argument is well-formed for argparse but unusable (exit code 2)."""


def redis_url(explicit: str | None = None) -> str:
    """``--redis-url``, else ``$TETHER_REDIS_URL``, else the dev Redis recorded in
    ./.tether/dev.json, else the local default (``tether.devstate.find_redis``)."""
    from tether.devstate import resolve_redis_url

    return resolve_redis_url(explicit)


def api_url(explicit: str | None = None) -> str:
    """``--url``, else ``$TETHER_URL``, else the local default (the client's rule)."""
    try:
        return resolve_url(explicit)
    except ConfigurationError as exc:
        raise UsageError(exc.message) from exc


def port_number(text: str) -> int:
    """argparse type for --port: 1-65535, with a readable error."""
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, not {port}")
    return port


def positive_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {value}")
    return value


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` on a new event loop; SIGINT and SIGTERM set ``stop`` so the
    process can finish what it holds and exit cleanly instead of dying mid-write."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    return asyncio.run(runner())


def tag(text: str) -> tuple[str, str]:
    """``--tag key:value`` (a listing filter)."""
    import argparse

    key, sep, value = text.partition(":")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key:value")
    return key, value


def call_api(url: str | None, op: Callable[[Any], Awaitable[Any]]) -> Any:
    """``op(client)`` with a client of the API at ``url`` (``api_url`` rules)."""
    resolved = api_url(url)
    from tether.client import AsyncClient  # only the commands that talk to the API

    async def go() -> Any:
        async with AsyncClient(resolved) as client:
            return await op(client)

    return asyncio.run(go())


def when(value: Any) -> str:
    """A timestamp as a table cell."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def table(rows: list[list[str]]) -> str:
    """Rows as left-aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
