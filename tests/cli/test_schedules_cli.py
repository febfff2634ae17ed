"""``tether schedules ...`` and the client's schedule methods against the real API."""

from __future__ import annotations

import asyncio
import json

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether.cli import main
from tether.cli.common import EXIT_FAILED


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def test_schedules_list_shows_each_schedule_and_when_it_fires(
    api: ApiServer, client: AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.schedule("nightly", function="tidy", cron="0 3 * * *", timezone="Europe/Paris")
    await client.schedule("often", workflow="report", every=90)

    assert await cli("schedules", "--url", api.url, "list") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STARTS", "WHEN", "NEXT", "FIRED", "MISSED", "STATE"]
    assert "job tidy" in lines[1] and "cron 0 3 * * * (Europe/Paris)" in lines[1]
    assert "run report" in lines[2] and "every 90s" in lines[2] and "active" in lines[2]


async def test_schedules_pause_resume_and_show(
    api: ApiServer, client: AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.schedule("often", function="tidy", every=60)

    assert await cli("schedules", "--url", api.url, "pause", "often") == 0
    assert (await client.get_schedule("often")).paused
    assert await cli("schedules", "--url", api.url, "resume", "often") == 0
    capsys.readouterr()
    assert await cli("schedules", "--url", api.url, "show", "often") == 0

    shown = json.loads(capsys.readouterr().out)
    assert shown["paused"] is False and shown["every"] == 60


async def test_schedules_trigger_starts_a_job_once_per_key(
    api: ApiServer, client: AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.schedule("often", function="tidy", every=60, input={"a": 1})

    assert await cli("schedules", "--url", api.url, "trigger", "often", "--key", "k") == 0
    assert await cli("schedules", "--url", api.url, "trigger", "often", "--key", "k") == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "often: started job sched:often@k"
    assert out[1] == "often: already started job sched:often@k"
    assert (await client.get("sched:often@k")).input == {"a": 1}


async def test_schedules_delete_then_show_fails_with_exit_code_1(
    api: ApiServer, client: AsyncClient
) -> None:
    await client.schedule("often", function="tidy", every=60)

    assert await cli("schedules", "--url", api.url, "delete", "often") == 0

    assert await cli("schedules", "--url", api.url, "show", "often") == EXIT_FAILED
    assert await client.list_schedules() == []
