"""The client's two words: wait= (how long the client waits) and timeout= (a job's own
time limit); what a wait that runs out says; a call nobody can serve fails early."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

import tether.client
from tether import AsyncClient, NoLiveMachine, ResultTimeout, func
from tether.workers import Worker


async def linger(ctx: dict[str, Any], seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def test_a_wait_that_runs_out_says_how_long_it_waited(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(linger):
        with pytest.raises(ResultTimeout) as timed_out:
            await client.call("linger", 5, wait=1)
    said = re.fullmatch(
        r"job \w+ \(linger\) is still (queued|running) after waiting (\d+\.\d)s "
        r"\(wait=1\); it goes on",
        str(timed_out.value),
    )
    assert said is not None, str(timed_out.value)
    assert float(said.group(2)) >= 1.0  # what it waited, not what was left (the old 0s)
    assert timed_out.value.details["waited"] == 1


async def test_waiting_for_a_job_by_id_says_how_long_it_waited(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(linger):
        job = await client.enqueue("linger", 1, delay=60)
        said = r"is still delayed after waiting \d+\.\ds \(wait=0\.3\)"
        with pytest.raises(ResultTimeout, match=said):
            await client.wait(job.id, wait=0.3)


async def test_timeout_on_call_is_the_deprecated_name_of_wait(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(linger):
        with pytest.warns(DeprecationWarning, match=r"call\(timeout=...\) is deprecated"):
            assert await client.call("linger", 0, timeout=10) == 0
        with pytest.warns(DeprecationWarning), pytest.raises(ResultTimeout, match=r"wait=0\.2"):
            await client.call("linger", 2, timeout=0.2)


async def test_timeout_on_wait_is_the_deprecated_name_of_wait(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(linger):
        job = await client.enqueue("linger", 0)
        with pytest.warns(DeprecationWarning, match=r"wait\(timeout=...\) is deprecated"):
            done = await client.wait(job.id, timeout=10)
    assert done.status == "completed"


async def test_timeout_on_enqueue_is_the_jobs_own_time_limit(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(func(linger, max_tries=1)):
        job = await client.enqueue("linger", 5, timeout=0.2)
        done = await client.wait(job.id, wait=10)
    assert done.status == "dead"
    assert done.error is not None and done.error.message == "timed out after 0.2s"


async def test_a_call_no_live_machine_can_serve_fails_early_saying_so(
    client: AsyncClient, make_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tether.client, "NO_MACHINE_CHECK", 0.3)
    async with make_worker(linger):
        pass  # registered linger, then stopped (and deregistered)
    started = time.monotonic()
    with pytest.raises(NoLiveMachine) as nobody:
        await client.call("linger", 0)  # no wait given: it would wait forever
    assert time.monotonic() - started < 5
    assert "and no live machine serves 'linger': start a worker" in str(nobody.value)
    assert nobody.value.details["status"] == "queued"
    assert isinstance(nobody.value, ResultTimeout)  # caught where a wait running out is


async def test_a_call_queued_behind_a_busy_machine_keeps_waiting(
    client: AsyncClient, make_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tether.client, "NO_MACHINE_CHECK", 0.1)
    async with make_worker(linger, max_jobs=1):
        busy = await client.enqueue("linger", 1)
        # Queued behind `busy` past the check: a live machine serves it, so it waits on.
        assert await client.call("linger", 0, wait=20) == 0
        assert (await client.get(busy.id)).status == "completed"
