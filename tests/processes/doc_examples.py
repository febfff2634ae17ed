"""The functions and the workflow the docs' shell examples use (`add` in
docs/http-api.md, the `order` workflow of docs/workflows.md), served by the plane that
tests/processes/test_doc_shell_blocks.py starts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


async def add(ctx: dict[str, Any], a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def print_label(ctx: dict[str, Any], order: dict[str, Any]) -> str:
    return f"label for {order['sku']}"


async def notify(ctx: dict[str, Any], order: dict[str, Any]) -> str:
    return f"notified about {order['sku']}"


async def reserve_stock(sku: str) -> dict[str, Any]:
    return {"sku": sku, "reserved": 1}


# docs/workflows.md's example, as written there.
@workflow(name="order", version=1, timeout=timedelta(days=30), max_attempts=3)
async def order(ctx: WorkflowContext, order: dict[str, Any]) -> dict[str, Any]:
    stock = await ctx.step("reserve", reserve_stock, order["sku"], retries=3)
    labels = await ctx.gather(ctx.call("print_label", order), ctx.call("notify", order))
    decision = await ctx.wait_for_approval(
        "ship", prompt="Ship it?", data=stock, timeout=timedelta(days=2)
    )
    if not decision.approved:
        return {"status": "rejected", "by": decision.by}
    await ctx.sleep(timedelta(hours=1))
    tracking = await ctx.wait_for_signal("tracking_number")
    ctx.log("shipped", tracking=tracking)
    return {"status": "shipped", "tracking": tracking, "labels": labels}


class WorkerSettings:
    functions = [add, print_label, notify]
    workflows = [order]
