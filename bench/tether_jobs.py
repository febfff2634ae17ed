"""The benchmark's tether worker: `tether worker tether_jobs:WorkerSettings`."""

from __future__ import annotations

import os
import time
from typing import Any


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def stamp(ctx: dict[str, Any]) -> float:
    """When the job started on the worker (wall clock, same host as the bench)."""
    return time.time()


async def checked(ctx: dict[str, Any], user: str, n: int) -> None:
    """A no-op with typed arguments: the API checks its input against their schema."""
    return None


async def unchecked(ctx: dict[str, Any], payload: Any) -> None:
    """The same input, but no schema (one untyped parameter): the API checks nothing."""
    return None


class WorkerSettings:
    functions = [noop, stamp, checked, unchecked]
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "100"))
