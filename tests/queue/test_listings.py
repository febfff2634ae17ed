"""Listings of jobs and runs: cursor-paged, newest first, filtered by status, name,
creation time and tags, never missing a match however old it is."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tether.errors import ValidationFailed
from tether.protocol import JobStatus, RunStatus
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.index import Cursor
from tether.queue.keys import Keys
from tether.queue.runs import RunEngine, RunRecord


async def every_page(runs: RunEngine, limit: int, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: Cursor | None = None
    while True:
        records, cursor = await runs.list_runs(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append([r.id for r in records])
        if cursor is None:
            return pages


@pytest.fixture
def partitioned(keys: Keys) -> QueueConfig:
    return QueueConfig(keys=Keys(prefix=keys.prefix, partitions=4))


async def test_a_selective_filter_finds_the_oldest_matches_by_following_the_cursor(
    redis: Redis, config: QueueConfig
) -> None:
    runs = RunEngine(redis, config)
    ids = [f"run-{i:02}" for i in range(46)]
    for run_id in ids:
        await runs.start("wf", None, run_id=run_id, version=1)
    for run_id in ids[:3]:  # the three oldest
        await runs.cancel(run_id)

    pages = await every_page(runs, 1, status=RunStatus.CANCELLED)

    found = [i for page in pages for i in page]
    assert sorted(found) == ids[:3]
    assert all(len(page) <= 1 for page in pages)


async def test_paging_over_partitions_returns_every_run_once_newest_first(
    redis: Redis, partitioned: QueueConfig
) -> None:
    runs = RunEngine(redis, partitioned)
    ids = [f"run{i}" for i in range(30)]
    for run_id in ids:
        await runs.start("wf", None, run_id=run_id, version=1)

    pages = await every_page(runs, 7)

    found = [i for page in pages for i in page]
    assert sorted(found) == sorted(ids) and len(found) == len(set(found))
    records: list[RunRecord] = [await runs.get(i) for i in found]
    keys = [(r.created_at, r.id) for r in records]
    assert keys == sorted(keys, reverse=True)
    assert {partitioned.keys.partition_of(i) for i in ids} == {0, 1, 2, 3}


async def test_created_after_and_before_bound_a_listing(redis: Redis, config: QueueConfig) -> None:
    runs = RunEngine(redis, config)
    for n in range(5):
        await runs.start("wf", None, run_id=f"r{n}", version=1)
        # Put each run at a known creation time (ms) in the index the listing reads.
        await redis.zadd(config.keys.for_id(f"r{n}").runs, {f"r{n}": 1000 * (n + 1)})

    records, _ = await runs.list_runs(created_after_ms=2000, created_before_ms=4000)

    assert [r.id for r in records] == ["r2", "r1"]


async def test_runs_are_listed_by_the_tags_they_were_started_with(
    redis: Redis, config: QueueConfig
) -> None:
    runs = RunEngine(redis, config)
    await runs.start("wf", None, run_id="a", version=1, tags={"env": "prod", "team": "x"})
    await runs.start("wf", None, run_id="b", version=1, tags={"env": "dev"})
    await runs.start("wf", None, run_id="c", version=1)

    prod, _ = await runs.list_runs(tags={"env": "prod"})
    both, _ = await runs.list_runs(tags={"env": "prod", "team": "y"})

    assert [r.id for r in prod] == ["a"] and prod[0].tags == {"env": "prod", "team": "x"}
    assert both == []


async def test_jobs_page_by_cursor_and_filter_by_status_function_and_tags(
    engine: QueueEngine,
) -> None:
    for n in range(12):
        await engine.enqueue("fn" if n % 2 else "other", n, job_id=f"j{n:02}", tags={"n": str(n)})
    await engine.cancel("j01")

    cancelled, after = await engine.list_jobs(status=JobStatus.CANCELLED, limit=5)
    tagged, _ = await engine.list_jobs(function="fn", tags={"n": "3"})
    first, cursor = await engine.list_jobs(function="other", limit=4)
    rest, end = await engine.list_jobs(function="other", limit=4, cursor=cursor)

    assert [j.id for j in cancelled] == ["j01"] and after is None
    assert [j.id for j in tagged] == ["j03"] and tagged[0].tags == {"n": "3"}
    assert len(first) == 4 and len(rest) == 2 and end is None
    assert {j.id for j in first + rest} == {f"j{n:02}" for n in range(0, 12, 2)}


@pytest.mark.parametrize("text", ["", "abc", "12", "-x", "x-1", "1" * 300])
def test_a_cursor_this_api_did_not_give_out_is_refused(text: str) -> None:
    with pytest.raises(ValidationFailed):
        Cursor.decode(text)
