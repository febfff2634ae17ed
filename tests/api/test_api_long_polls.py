"""Long polls: woken by notifications, bounded Redis connections, and the safety nets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import Register, until
from litestar import Litestar
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from tether.api.notify import Notifier
from tether.api.polling import poll_jobs
from tether.api.settings import ApiSettings
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import CLUSTER_SLACK, redis_client


async def on_every_node(redis: Redis | RedisCluster, *command: str | int) -> None:
    """A server command where the subscription is: on a cluster it may be on any node."""
    if isinstance(redis, RedisCluster):
        # The nodes themselves: redis-py routes a command it has no flag for (CLIENT KILL)
        # by its key, node flag or not.
        await redis.initialize()
        await redis.execute_command(*command, target_nodes=redis.get_nodes())
    else:
        await redis.execute_command(*command)


async def api_connections(redis: Redis | RedisCluster, settings: ApiSettings) -> int:
    """Connections the app holds on the server: its pool's and its subscription's (on a
    cluster, on the node where it holds the most)."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        lists = [await redis.client_list(target_nodes=node) for node in redis.get_nodes()]
    else:
        lists = [await redis.client_list()]
    return max(sum(1 for c in cs if c["name"].startswith(settings.client_name)) for cs in lists)


def connection_bound(redis: Redis | RedisCluster, settings: ApiSettings) -> int:
    """The pool's bound and the subscription; on a cluster the pool is bounded per node,
    with a few connections more for the client's own slot-table refreshes."""
    slack = CLUSTER_SLACK if isinstance(redis, RedisCluster) else 0
    return settings.redis_max_connections + slack + 1


@pytest.fixture
def settings(redis_url: str, settings: ApiSettings) -> ApiSettings:
    # A small pool makes the bound visible: 1,000 polls must share 8 connections.
    return ApiSettings(
        redis_url=settings.redis_url,
        prefix=settings.prefix,
        client_name=settings.client_name,
        redis_max_connections=8,
    )


async def test_a_thousand_waiting_polls_hold_a_bounded_number_of_redis_connections(
    client: httpx.AsyncClient,
    register: Register,
    notifier: Notifier,
    redis: Redis,
    settings: ApiSettings,
) -> None:
    for i in range(1000):
        await register("add", machine=f"m{i}")

    async def poll(i: int) -> list[dict[str, Any]]:
        body = {"functions": ["add"], "max_jobs": 1, "wait": 30}
        response = await client.post(f"/v1/machines/m{i}/poll", json=body)
        assert response.status_code == 200, response.text
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs

    polls = [asyncio.create_task(poll(i)) for i in range(1000)]
    # (A poll that ended early would fail here with its own error, not as a timeout.)
    await until(lambda: notifier.waiting_polls == 1000 or any(p.done() for p in polls), 120)
    for task in polls:
        assert not task.done(), task.result()
    # The pool's connections plus the one subscription, however many polls wait.
    assert await api_connections(redis, settings) <= connection_bound(redis, settings)
    body = {"jobs": [{"function": "add", "input": i} for i in range(1000)]}
    assert (await client.post("/v1/jobs/batch", json=body)).status_code == 201
    answers = await asyncio.gather(*polls)
    assert sorted(len(jobs) for jobs in answers) == [1] * 1000
    assert len({jobs[0]["id"] for jobs in answers}) == 1000
    assert notifier.waiting_polls == 0
    assert await api_connections(redis, settings) <= connection_bound(redis, settings)


async def test_a_poll_gets_a_job_whose_notification_was_lost(
    client: httpx.AsyncClient,
    register: Register,
    notifier: Notifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register("add")
    monkeypatch.setattr(notifier, "_recheck_interval", 0.02)
    monkeypatch.setattr(notifier, "dispatch", lambda data: None)  # every message lost
    body = {"functions": ["add"], "wait": 30}
    waiting = asyncio.create_task(client.post("/v1/machines/m1/poll", json=body))
    await until(lambda: notifier.waiting_polls == 1)
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    response = await waiting
    assert [j["id"] for j in response.json()["jobs"]] == [job_id]


async def test_the_subscription_comes_back_after_its_connection_is_killed(
    client: httpx.AsyncClient,
    register: Register,
    notifier: Notifier,
    redis: Redis,
    settings: ApiSettings,
) -> None:
    await register("add")
    assert notifier.subscriptions == 1
    await on_every_node(redis, "CLIENT", "KILL", "TYPE", "pubsub")
    await until(lambda: notifier.subscriptions == 2 and notifier.connected)
    waiting = asyncio.create_task(
        client.post("/v1/machines/m1/poll", json={"functions": ["add"], "wait": 30})
    )
    await until(lambda: notifier.waiting_polls == 1)
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    assert [j["id"] for j in (await waiting).json()["jobs"]] == [job_id]


async def test_a_poll_whose_client_left_leases_nothing(
    app: Litestar, api_engine: QueueEngine, notifier: Notifier
) -> None:
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    poll = asyncio.create_task(
        poll_jobs(api_engine, notifier, "m1", ["add"], 1, 30, receive)  # type: ignore[arg-type]
    )
    await until(lambda: notifier.waiting_polls == 1)
    left.set()
    assert await poll == []
    job = await api_engine.enqueue("add")
    assert (await api_engine.get_job(job.id)).status == "queued"
    assert notifier.waiting_polls == 0


async def test_a_poll_waiting_on_several_functions_wakes_for_any_of_them(
    client: httpx.AsyncClient, register: Register, notifier: Notifier
) -> None:
    await register("add", "mul")
    body = {"functions": ["add", "mul"], "wait": 30}
    waiting = asyncio.create_task(client.post("/v1/machines/m1/poll", json=body))
    await until(lambda: notifier.waiting_polls == 1)
    job_id = (await client.post("/v1/jobs", json={"function": "mul"})).json()["id"]
    assert [j["id"] for j in (await waiting).json()["jobs"]] == [job_id]


async def test_waiting_polls_answer_empty_at_once_when_the_process_shuts_down(
    client: httpx.AsyncClient, register: Register, notifier: Notifier
) -> None:
    await register("add")
    body = {"functions": ["add"], "wait": 30}
    waiting = asyncio.create_task(client.post("/v1/machines/m1/poll", json=body))
    await until(lambda: notifier.waiting_polls == 1)
    notifier.close_waits()
    response = await waiting
    assert (response.status_code, response.json()) == (200, {"jobs": []})


@pytest.fixture
async def quick_pings(redis_url: str, redis: Redis, keys: Keys) -> AsyncIterator[Notifier]:
    """A notifier that PINGs after 0.2 s of silence (the default is 10 s)."""
    subscriber = redis_client(redis_url, decode_responses=True)
    notifier = Notifier(subscriber, redis, keys, ping_after=0.2)
    await notifier.start()
    assert await notifier.wait_connected(5.0)
    yield notifier
    await notifier.stop()
    await subscriber.aclose()


async def test_a_quiet_subscription_is_pinged_and_its_answer_counts_as_life(
    quick_pings: Notifier,
) -> None:
    await asyncio.sleep(1.5)  # several PING intervals without a message
    assert (quick_pings.subscriptions, quick_pings.connected) == (1, True)


async def test_a_subscription_silent_even_to_pings_is_replaced(
    quick_pings: Notifier, redis: Redis
) -> None:
    # A server that takes commands but answers none for 1 s: the PING goes unanswered.
    await on_every_node(redis, "CLIENT", "PAUSE", 1000, "ALL")
    await until(lambda: quick_pings.subscriptions == 2 and quick_pings.connected, timeout=10)
