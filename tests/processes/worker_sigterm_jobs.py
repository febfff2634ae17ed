"""Job functions for test_worker_sigterm.py: one that outlives a short grace period."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def long_nap(ctx: dict[str, Any], seconds: float) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return {"machine": ctx["machine_id"], "try": ctx["job_try"]}


def stuck(ctx: dict[str, Any]) -> None:
    """A sync job that ignores every request to stop (a thread cannot be interrupted)."""
    time.sleep(3600)


class WorkerSettings:
    functions = [long_nap, stuck]
    shutdown_grace = 0.5
