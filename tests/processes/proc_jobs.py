"""Job functions the process tests run on real worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any


def machine_of(ctx: dict[str, Any]) -> str:
    # The worker puts its machine id in ctx; the environment is the fallback for a
    # worker that does not (the tests start each worker with --machine-id anyway).
    return str(ctx.get("machine_id") or os.environ.get("TETHER_MACHINE_ID", f"pid-{os.getpid()}"))


async def nap(ctx: dict[str, Any], seconds: float = 0.0) -> dict[str, Any]:
    """Sleeps, then says which machine ran it and which try it was."""
    await asyncio.sleep(seconds)
    return {"machine": machine_of(ctx), "pid": os.getpid(), "try": ctx.get("job_try")}


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def mark(ctx: dict[str, Any], tag: str, seconds: float = 0.05) -> str:
    """A side effect: appends its tag (and who ran it) to the file the test names, then
    takes a while. A job that runs twice leaves its tag there twice."""
    line = f"{tag} {machine_of(ctx)} {ctx.get('job_try')}\n"
    with open(os.environ["TETHER_TEST_EFFECTS"], "a") as effects:
        effects.write(line)  # one short O_APPEND write: whole, whatever else appends
    await asyncio.sleep(seconds)
    return tag


async def chatter(ctx: dict[str, Any], lines: int = 5, every: float = 0.2) -> int:
    """Logs ``lines`` lines, one every ``every`` seconds (captured by the worker)."""
    for i in range(lines):
        logging.getLogger("proc.chatter").info("chatter %d of %d", i + 1, lines)
        await asyncio.sleep(every)
    return lines


class WorkerSettings:
    functions = [nap, noop, mark, chatter]
    max_jobs = 10
