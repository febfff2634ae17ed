"""An arq app written for arq, as an arq user writes it: nothing here knows tether.
tests/arq_app/test_real_arq.py runs it with `tether worker`'s Worker and enqueues with
`from tether.arq import create_pool` (the one line an arq app changes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq import Retry, cron, func
from arq.connections import RedisSettings

seen: list[str] = []


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = {"orders": 0}
    seen.append("startup")


async def shutdown(ctx: dict[str, Any]) -> None:
    seen.append("shutdown")


async def on_job_start(ctx: dict[str, Any]) -> None:
    seen.append(f"start:{ctx['job_id']}")


async def on_job_end(ctx: dict[str, Any]) -> None:
    seen.append(f"end:{ctx['job_id']}")


async def place_order(
    ctx: dict[str, Any], sku: str, quantity: int = 1, *, note: str = ""
) -> dict[str, Any]:
    ctx["db"]["orders"] += 1
    return {"sku": sku, "quantity": quantity, "note": note, "try": ctx["job_try"]}


async def charge_card(ctx: dict[str, Any], amount: int) -> str:
    if ctx["job_try"] < 2:
        raise Retry(defer=timedelta(milliseconds=200))
    return f"charged {amount} on try {ctx['job_try']} (enqueued {ctx['enqueue_time'].isoformat()})"


async def nightly_report(ctx: dict[str, Any]) -> str:
    seen.append("nightly_report")
    return "report"


class WorkerSettings:
    functions = [place_order, func(charge_card, timeout=30, max_tries=3)]
    cron_jobs = [cron(nightly_report, hour=2, minute=30, run_at_startup=True)]
    on_startup = startup
    on_shutdown = shutdown
    on_job_start = on_job_start
    on_job_end = on_job_end
    redis_settings = RedisSettings(host="redis.internal", port=6379)
    queue_name = "shop:queue"
    max_jobs = 5
    job_timeout = 60
    max_tries = 4
    keep_result = 3600
    allow_abort_jobs = True
