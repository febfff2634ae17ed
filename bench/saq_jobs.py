"""The benchmark's saq worker."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from saq import Queue, Worker


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def stamp(ctx: dict[str, Any]) -> float:
    return time.time()


async def main() -> None:
    queue = Queue.from_url(os.environ["BENCH_REDIS_URL"])
    worker = Worker(
        queue, functions=[noop, stamp], concurrency=int(os.environ.get("BENCH_MAX_JOBS", "100"))
    )
    await worker.start()


if __name__ == "__main__":
    asyncio.run(main())
