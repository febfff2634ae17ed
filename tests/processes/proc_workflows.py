"""Workflows the process tests run on real worker processes.

Environment knobs (set per worker process by the tests):
- WF_EFFECTS: a file each step appends "<step> <pid>" to, so tests count side effects;
- WF_SLOW_STEP: the name of a step that hangs (so a test can kill -9 mid-step);
- WF_ORDER: "ab" or "ba", the order of the steps of ``reorder`` (non-determinism);
- WF_DEPLOY_VERSION: the version of ``deploy`` this worker serves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


async def effect(name: str) -> str:
    logging.getLogger("proc.effects").info("effect %s", name)  # captured: the run's logs
    with open(os.environ["WF_EFFECTS"], "a") as out:
        out.write(f"{name} {os.getpid()}\n")
    if os.environ.get("WF_SLOW_STEP") == name:
        await asyncio.sleep(300)
    return name


@workflow(name="outage")
async def outage(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    reserved = await ctx.step("reserve", effect, "reserve")
    charged = await ctx.step("charge", effect, "charge")
    decision = await ctx.wait_for_approval("ship", prompt=f"ship order {order}?")
    shipped = await ctx.step("ship", effect, "ship")
    return {"steps": [reserved, charged, shipped], "by": decision.by, "pid": os.getpid()}


@workflow(name="five")
async def five(ctx: WorkflowContext) -> list[str]:
    return [await ctx.step(f"s{i}", effect, f"s{i}") for i in range(1, 6)]


@workflow(name="napper")
async def napper(ctx: WorkflowContext) -> dict[str, Any]:
    await ctx.step("before", effect, "before")
    await ctx.sleep(2)
    await ctx.step("after", effect, "after")
    return {"pid": os.getpid()}


@workflow(name="reorder")
async def reorder(ctx: WorkflowContext) -> str:
    first, second = ("a", "b") if os.environ.get("WF_ORDER", "ab") == "ab" else ("b", "a")
    await ctx.step(first, effect, first)
    await ctx.wait_for_approval("go")
    await ctx.step(second, effect, second)
    return first + second


def _deploy(version: int) -> Any:
    @workflow(name="deploy", version=version)
    async def deploy(ctx: WorkflowContext) -> str:
        await ctx.step("prepare", effect, f"prepare-v{version}")
        await ctx.wait_for_approval("go")
        return f"v{version}"

    return deploy


class WorkerSettings:
    workflows = [
        outage,
        five,
        napper,
        reorder,
        _deploy(int(os.environ.get("WF_DEPLOY_VERSION", "1"))),
    ]
    max_jobs = 10
    shutdown_grace = 1
