"""What a step may return (JSON, within the payload limit) and ctx.log lines written once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from wf_helpers import Machine

from tether.queue.runs import RunEngine, RunStatus
from tether.workers.context import StepFailed, WorkflowContext
from tether.workers.workflow import workflow

ran: list[Any] = []
returns: dict[str, Any] = {}


def produce(key: str) -> Any:
    ran.append(key)
    return returns[key]


@workflow(name="careful_step")
async def careful_step(ctx: WorkflowContext, key: str) -> Any:
    try:
        return await ctx.step("produce", produce, key, retries=2, backoff=0.001)
    except StepFailed as exc:
        return {"type": exc.error_type, "message": exc.error["message"]}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({1, 2}, "set"),
        (Decimal("1.5"), "Decimal"),
        (b"raw", "bytes"),
        ({1: "int key"}, "dict"),
        (2**70, "int"),
        (float("nan"), "NaN"),
        ({"deep": [1.0, float("inf")]}, "Infinity"),
    ],
    ids=["set", "decimal", "bytes", "int-keys", "big-int", "nan", "nested-inf"],
)
async def test_a_step_result_that_is_not_json_fails_the_step_once_naming_why(
    runs: RunEngine, machine_factory: Callable[..., Machine], value: Any, named: str
) -> None:
    ran.clear()
    returns["k"] = value
    started = await runs.start("careful_step", "k", version=1)
    run = await machine_factory([careful_step]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result["type"] == "NotJsonSerializable"
    assert named in run.result["message"]
    assert ran == ["k"]  # its side effect ran once: retries=2 were not used


async def test_a_step_result_over_the_payload_limit_is_a_catchable_failure_naming_its_size(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    limit = runs.config.max_payload_bytes
    returns["big"] = "x" * (limit + 10)
    started = await runs.start("careful_step", "big", version=1)
    run = await machine_factory([careful_step]).drain(started.id)

    assert run.status == RunStatus.COMPLETED
    assert run.result["type"] == "PayloadTooLarge"
    assert str(limit + 12) in run.result["message"] and str(limit) in run.result["message"]


@workflow(name="unhandled_set", max_attempts=3)
async def unhandled_set(ctx: WorkflowContext) -> Any:
    return await ctx.step("produce", produce, "set")


async def test_an_unhandled_non_json_step_result_fails_the_run_without_automatic_retries(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    ran.clear()
    returns["set"] = {1}
    started = await runs.start("unhandled_set", None, version=1)
    run = await machine_factory([unhandled_set]).drain(started.id)

    assert run.status == RunStatus.FAILED and run.failures == 1
    assert ran == ["set"]


# -- ctx.log ------------------------------------------------------------------------------


async def log_lines(runs: RunEngine, run_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(e["line"]) for e in await runs.timeline(run_id) if e["event"] == "log"]


@workflow(name="chatty")
async def chatty(ctx: WorkflowContext) -> int:
    ctx.log("start")
    child = ctx.call("double", 1)
    ctx.log("child requested")
    value: int = await child
    ctx.log("child returned", value=value)
    for i in range(3):
        ctx.log("tick", i=i)
        await ctx.sleep(0)
    return value


async def test_each_log_line_is_written_once_wherever_it_stands(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("chatty", None, version=1)
    run = await machine_factory([chatty], {"double": lambda x: x * 2}).drain(started.id)

    assert run.status == RunStatus.COMPLETED and run.activations == 5
    assert await log_lines(runs, started.id) == [
        {"message": "start"},
        {"message": "child requested"},
        {"message": "child returned", "value": 2},
        {"message": "tick", "i": 0},
        {"message": "tick", "i": 1},
        {"message": "tick", "i": 2},
    ]


@workflow(name="logs_a_mark")
async def logs_a_mark(ctx: WorkflowContext) -> None:
    ctx.log("hello", **{"@": 5})
    await ctx.sleep(0)


async def test_a_log_field_named_like_the_line_number_cannot_spoof_it(
    runs: RunEngine, machine_factory: Callable[..., Machine]
) -> None:
    started = await runs.start("logs_a_mark", None, version=1)
    await machine_factory([logs_a_mark]).drain(started.id)

    assert await log_lines(runs, started.id) == [{"message": "hello"}]


@workflow(name="long_lived")
async def long_lived(ctx: WorkflowContext) -> None:
    for i in range(150):
        ctx.log("tick", i=i)
        await ctx.step(f"s{i}", lambda: None)


async def test_a_long_run_keeps_its_whole_history_while_its_log_lines_are_bounded(
    redis: Any, config: Any, machine_factory: Callable[..., Machine]
) -> None:
    from tether.queue.config import QueueConfig
    from tether.queue.runs import RunEngine as Engine

    short = Engine(redis, QueueConfig(keys=config.keys, timeline_maxlen=10))
    started = await short.start("long_lived", None, version=1)
    machine = machine_factory([long_lived])
    machine.runs = short
    await machine.drain(started.id)
    pk = config.keys.for_id(started.id)

    events = await short.timeline(started.id, limit=10_000)

    assert events[0]["event"] == "created"
    assert sum(1 for e in events if e["event"] == "step") == 150
    assert await redis.xlen(pk.logs(started.id)) < 150  # MAXLEN ~ trims whole nodes
