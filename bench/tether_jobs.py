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


class WorkerSettings:
    functions = [noop, stamp]
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "100"))
