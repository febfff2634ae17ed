"""A workflow with three steps and a child job, for the trace test (test_traces.py)."""

from __future__ import annotations

from typing import Any

from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


async def work(name: str) -> str:
    return name


async def receipt(ctx: dict[str, Any], order: str) -> dict[str, Any]:
    """The child job: says which traceparent its ctx carried."""
    return {"order": order, "traceparent": ctx["traceparent"]}


@workflow(name="traced")
async def traced(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    await ctx.step("reserve", work, "reserve")
    await ctx.step("charge", work, "charge")
    child = await ctx.call("receipt", order)
    await ctx.step("ship", work, "ship")
    return {"child": child, "traceparent": ctx.traceparent}


class WorkerSettings:
    functions = [receipt]
    workflows = [traced]
    max_jobs = 4
