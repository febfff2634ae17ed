"""The benchmark's tether worker: `tether worker tether_jobs:WorkerSettings`."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

chatty_log = logging.getLogger("bench.chatty")


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


async def quiet(ctx: dict[str, Any]) -> float:
    """bench/log_cost.py's baseline: logs nothing (returns when it started, as stamp)."""
    return time.time()


async def chatty(ctx: dict[str, Any]) -> float:
    """bench/log_cost.py: the same, logging 10 lines (captured and shipped by the worker)."""
    for i in range(10):
        chatty_log.info("step %d of job %s", i, ctx["job_id"])
    return time.time()


class WorkerSettings:
    functions = [noop, stamp, checked, unchecked, quiet, chatty]
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "100"))
