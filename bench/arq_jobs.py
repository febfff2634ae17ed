"""The benchmark's arq worker, started with arq.worker.run_worker (no per-job logging,
as for the other two)."""

from __future__ import annotations

import os
import time
from typing import Any

from arq.connections import RedisSettings
from arq.worker import run_worker


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def stamp(ctx: dict[str, Any]) -> float:
    return time.time()


class WorkerSettings:
    functions = [noop, stamp]
    redis_settings = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", ""))
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "100"))
    keep_result = 600


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
