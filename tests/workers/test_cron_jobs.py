"""``WorkerSettings.cron_jobs``: arq's ``cron(...)`` fields, as schedules the
orchestrator fires and the worker runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tether import AsyncClient, ConfigurationError, cron
from tether.orchestrator.loop import Orchestrator
from tether.workers import Worker, load_settings
from tether.workers.cron import as_cron_job

ran: list[str] = []


async def tidy(ctx: dict[str, Any]) -> str:
    ran.append(ctx["job_id"])
    return "tidied"


# -- fields to cron expressions -------------------------------------------------------


def test_arq_defaults_fire_every_minute_at_second_zero() -> None:
    job = cron(tidy)

    assert job.expression == "* * * * * 0"
    assert job.name == "cron:tidy" and job.max_tries == 1


def test_sets_of_values_become_lists_in_order() -> None:
    job = cron(tidy, hour={15, 3}, minute=0, second={30, 0})

    assert job.expression == "0 3,15 * * * 0,30"


def test_weekdays_count_from_monday_as_in_arq() -> None:
    assert cron(tidy, weekday=0).expression.split()[4] == "1"
    assert cron(tidy, weekday={"sat", "sun"}).expression.split()[4] == "0,6"
    assert cron(tidy, weekday="fri", month=12, day=24).expression == "* * 24 12 5 0"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"minute": 60}, "minute"),
        ({"hour": {1, 24}}, "hour"),
        ({"month": 0}, "month"),
        ({"weekday": "someday"}, "weekday"),
        ({"second": True}, "second"),
        ({"day": "1"}, "day"),
    ],
)
def test_a_bad_field_is_a_configuration_error_naming_it(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        cron(tidy, **fields)


def test_a_timedelta_timeout_is_seconds() -> None:
    assert cron(tidy, timeout=timedelta(minutes=2)).timeout == 120


@dataclass
class LookAlikeCronJob:
    """The attributes of arq.cron.CronJob, as arq.cron(...) makes them."""

    name: str
    coroutine: Any
    month: Any = None
    day: Any = None
    weekday: Any = None
    hour: Any = None
    minute: Any = None
    second: Any = 0
    microsecond: int = 123_456
    run_at_startup: bool = False
    unique: bool = True
    job_id: str | None = None
    timeout: Any = None
    keep_result: Any = 0
    keep_result_forever: bool = False
    max_tries: int = 1


def test_an_arq_cron_job_is_read_by_its_attributes() -> None:
    job = as_cron_job(LookAlikeCronJob("cron:tidy", tidy, hour=4, minute=30, max_tries=3))

    assert (job.name, job.expression, job.max_tries) == ("cron:tidy", "30 4 * * * 0", 3)


def test_settings_read_cron_jobs_and_their_time_zone() -> None:
    class WorkerSettings:
        cron_jobs = [cron(tidy, minute=0)]
        timezone = ZoneInfo("Europe/Paris")

    config = load_settings(WorkerSettings)

    assert [j.name for j in config.cron_jobs] == ["cron:tidy"]
    assert config.timezone == "Europe/Paris"


def test_two_cron_jobs_of_one_name_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="two cron jobs"):
        load_settings({"cron_jobs": [cron(tidy), cron(tidy, minute=5)]})


def test_something_else_in_cron_jobs_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cron_jobs"):
        load_settings({"cron_jobs": [tidy]})


# -- end to end -----------------------------------------------------------------------


async def test_a_worker_puts_its_cron_jobs_as_schedules_and_serves_them(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(cron_jobs=[cron(tidy, hour=3, minute=0, timeout=9)]) as worker:
        await worker.started.wait()
        schedule = await client.get_schedule("cron:tidy")
        functions = {f.name: f for f in await client.functions()}

    assert (schedule.function, schedule.cron, schedule.source) == (
        "cron:tidy",
        "0 3 * * * 0",
        "worker",
    )
    assert schedule.timeout == 9 and schedule.max_attempts == 1
    assert "cron:tidy" in functions


async def test_a_restarted_worker_leaves_its_schedule_as_it_was(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(cron_jobs=[cron(tidy, minute=0)]) as worker:
        await worker.started.wait()
    first = await client.get_schedule("cron:tidy")

    async with make_worker(cron_jobs=[cron(tidy, minute=0)]) as worker:
        await worker.started.wait()

    assert await client.get_schedule("cron:tidy") == first


async def test_a_cron_job_runs_every_second_it_names(
    client: AsyncClient, make_worker: Callable[..., Worker], orchestrator: Orchestrator
) -> None:
    ran.clear()
    every_second = cron(tidy, second=set(range(60)))
    async with make_worker(cron_jobs=[every_second]) as worker:
        await worker.started.wait()
        for _ in range(500):
            if len(ran) >= 2:
                break
            await asyncio.sleep(0.01)

    assert len(ran) >= 2
    assert all(job_id.startswith("sched:cron:tidy:") for job_id in ran)
    assert len(set(ran)) == len(ran)


async def test_run_at_startup_runs_the_job_once_when_the_worker_starts(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    ran.clear()
    async with make_worker(cron_jobs=[cron(tidy, hour=3, run_at_startup=True)]) as worker:
        await worker.started.wait()
        for _ in range(500):
            if ran:
                break
            await asyncio.sleep(0.01)

    [job_id] = ran
    assert job_id.startswith("sched:cron:tidy@")
