"""``tether runs show ID --tree``: the run's timeline as a tree with durations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether.cli import main
from tether.cli.run_tree import build
from tether.protocol import TimelineEvent
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


@workflow(name="tree_flow")
async def tree_flow(ctx: WorkflowContext, n: int) -> int:
    doubled = await ctx.step("double", lambda: n * 2)
    total: int = await ctx.call("add", {"a": doubled, "b": 1})
    ctx.log("added [x]", total=total)
    await ctx.wait_for_approval("ship")
    return total


@pytest.fixture
async def worker(api: ApiServer) -> AsyncIterator[Worker]:
    settings = {"functions": [add], "workflows": [tree_flow], "shutdown_grace": 1.0}
    async with Worker(settings, url=api.url) as w:
        yield w


async def test_a_finished_run_shows_as_a_tree_of_activations_steps_children_and_waits(
    client: AsyncClient,
    worker: Worker,
    orchestrator: object,
    api: ApiServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await client.start("tree_flow", 20, id="tree-1")
    for _ in range(1000):
        run = await client.get_run("tree-1")
        if run.status == "waiting" and (run.waiting_on or {}).get("kind") == "approval":
            break
        await asyncio.sleep(0.01)
    await client.approve("tree-1", "ship")
    assert (await client.wait_run("tree-1", wait=10)).status == "completed"
    monkeypatch.setenv("COLUMNS", "120")
    code = await asyncio.to_thread(main, ["runs", "--url", api.url, "show", "tree-1", "--tree"])
    assert code == 0
    out = capsys.readouterr().out
    assert "tree-1 (tree_flow) completed" in out
    assert "step double" in out
    assert "child add (completed)" in out
    assert "wait approval ship" in out
    assert "added [x]" in out  # a log line, printed as text (not rich markup)
    assert out.count("activation tree-1:a") >= 2
    assert " ms" in out or " s" in out


def event(at: int, what: str, /, **fields: str) -> TimelineEvent:
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at)
    return TimelineEvent(id=f"{at}-0", event=what, at=moment, fields=fields)


def test_a_wait_lasts_until_the_next_activation_is_queued() -> None:
    tree = build(
        "r",
        [
            event(0, "activation_started", job="r:a1"),
            event(5, "waiting", kind="approval", name="ship"),
            event(6, "completed", job="r:a1"),
            event(2006, "activation_queued", job="r:a2"),
            event(2010, "activation_started", job="r:a2"),
            event(2020, "completed", job="r:a2"),
            event(2021, "completed"),
        ],
    )
    assert [(n.label, n.duration()) for n in tree.children] == [
        ("activation r:a1", "6 ms"),
        ("wait approval ship", "2.00 s"),
        ("activation r:a2", "10 ms"),
    ]
    assert tree.label == "r completed"


def test_an_unfinished_child_is_open() -> None:
    tree = build(
        "r",
        [
            event(0, "activation_started", job="r:a1"),
            event(1, "child_started", job="c1", function="add"),
        ],
    )
    [activation] = tree.children
    [child] = activation.children
    assert (child.label, child.duration()) == ("child add", "open")
