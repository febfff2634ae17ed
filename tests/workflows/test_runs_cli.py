"""``tether runs ...`` against the real API: what an operator types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether.cli import main
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


@workflow(name="cli_gate")
async def cli_gate(ctx: WorkflowContext) -> dict[str, object]:
    decision = await ctx.wait_for_approval("ship")
    note = await ctx.wait_for_signal("note")
    return {"approved": decision.approved, "by": decision.by, "note": note}


@pytest.fixture
async def worker(api: ApiServer) -> AsyncIterator[Worker]:
    async with Worker({"workflows": [cli_gate], "shutdown_grace": 1.0}, url=api.url) as w:
        yield w


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def until_waiting_on(client: AsyncClient, run_id: str, kind: str) -> None:
    for _ in range(1000):
        run = await client.get_run(run_id)
        if run.status == "waiting" and (run.waiting_on or {}).get("kind") == kind:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} never waited on {kind}")


async def test_runs_approve_and_signal_from_the_command_line_finish_a_run(
    api: ApiServer, client: AsyncClient, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await client.start("cli_gate", None, id="cli-1")
    await until_waiting_on(client, run.id, "approval")

    assert await cli("runs", "--url", api.url, "approve", run.id, "ship") == 0
    await until_waiting_on(client, run.id, "signal")
    assert await cli("runs", "--url", api.url, "signal", run.id, "note", '{"n": 1}') == 0
    done = await client.wait_run(run.id, wait=10)

    # The decider is the key the CLI used ($TETHER_API_KEY: the test's admin key).
    assert done.result == {"approved": True, "by": "test-admin", "note": {"n": 1}}
    assert "cli-1: ship approved" in capsys.readouterr().out


async def test_runs_list_shows_what_a_run_waits_on(
    api: ApiServer, client: AsyncClient, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await client.start("cli_gate", None, id="cli-2")
    await until_waiting_on(client, run.id, "approval")

    assert await cli("runs", "--url", api.url, "list", "--status", "waiting") == 0

    line = next(li for li in capsys.readouterr().out.splitlines() if li.startswith("cli-2"))
    assert "cli_gate" in line and "approval:ship" in line


async def test_runs_deny_twice_fails_with_exit_code_1(
    api: ApiServer, client: AsyncClient, worker: Worker
) -> None:
    run = await client.start("cli_gate", None, id="cli-3")
    assert await cli("runs", "--url", api.url, "deny", run.id, "ship") == 0

    assert await cli("runs", "--url", api.url, "deny", run.id, "ship") == 1


async def test_runs_signal_with_a_bad_json_payload_is_a_usage_error(api: ApiServer) -> None:
    with pytest.raises(SystemExit) as exited:
        await cli("runs", "--url", api.url, "signal", "r1", "note", "{not json")
    assert exited.value.code == 2


async def test_runs_cancel_and_show_from_the_command_line(
    api: ApiServer, client: AsyncClient, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await client.start("cli_gate", None, id="cli-4")

    assert await cli("runs", "--url", api.url, "cancel", run.id) == 0
    assert await cli("runs", "--url", api.url, "show", run.id, "--timeline") == 0

    out = capsys.readouterr().out
    assert "cli-4: cancelled" in out and '"status": "cancelled"' in out


async def test_runs_list_follows_the_cursor_and_filters_by_tag(
    api: ApiServer, client: AsyncClient, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        await client.start("cli_gate", None, id=f"tagged-{i}", tags={"batch": "b7"})
    await client.start("cli_gate", None, id="untagged")
    capsys.readouterr()

    code = await cli("runs", "--url", api.url, "list", "--tag", "batch:b7", "--json")

    out = capsys.readouterr().out
    assert code == 0
    assert sorted(line.split('"id":"')[1].split('"')[0] for line in out.splitlines()) == [
        "tagged-0",
        "tagged-1",
        "tagged-2",
    ]


@workflow(name="cli_kid")
async def cli_kid(ctx: WorkflowContext, n: int) -> int:
    return n


@workflow(name="cli_mom")
async def cli_mom(ctx: WorkflowContext) -> list[int]:
    return list(await ctx.gather(ctx.child("cli_kid", 1), ctx.child("cli_kid", 2)))


async def test_runs_list_parent_shows_only_the_child_runs_of_that_run(
    api: ApiServer, client: AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {"workflows": [cli_mom, cli_kid], "shutdown_grace": 1.0}
    async with Worker(settings, url=api.url):
        await client.result((await client.start("cli_mom", None, id="mom-1")).id, wait=10)
        await client.result((await client.start("cli_mom", None, id="mom-2")).id, wait=10)
    capsys.readouterr()

    code = await cli("runs", "--url", api.url, "list", "--parent", "mom-1", "--json")

    out = capsys.readouterr().out
    assert code == 0
    assert sorted(line.split('"id":"')[1].split('"')[0] for line in out.splitlines()) == [
        "mom-1:w0",
        "mom-1:w1",
    ]
