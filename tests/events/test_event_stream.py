"""GET /v1/events: server-sent events read by a real HTTP client from a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from api_server import ApiServer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sse import events

from tether import AsyncClient
from tether.api.events import EventFilter, EventHub, parse_message
from tether.api.notify import Notifier
from tether.queue.keys import Keys
from tether.workers import Worker
from tether.workers.context import WorkflowContext
from tether.workers.workflow import workflow


@workflow(name="gate")
async def gate(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    decision = await ctx.wait_for_approval("go", prompt="go?")
    return {"n": n, "approved": decision.approved}


def auth(api: ApiServer) -> dict[str, str]:
    """The admin's Authorization header where the API wants keys (else none)."""
    return api.headers() if getattr(api, "keys", None) else {}


async def register(api: ApiServer, *functions: str) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=auth(api)) as http:
        body = {"functions": [{"name": fn} for fn in functions]}
        response = await http.post("/v1/machines/m1/heartbeat", json=body)
        assert response.status_code == 200


async def run_one(api: ApiServer, function: str) -> str:
    """Enqueue, lease and complete one job of ``function``; its id."""
    async with httpx.AsyncClient(base_url=api.url, headers=auth(api)) as http:
        job = (await http.post("/v1/jobs", json={"function": function})).json()
        polled = await http.post("/v1/machines/m1/poll", json={"functions": [function], "wait": 1})
        [leased] = polled.json()["jobs"]
        item = {"id": leased["id"], "token": leased["token"], "status": "completed"}
        await http.post("/v1/machines/m1/results", json={"results": [item]})
        job_id: str = job["id"]
        return job_id


def server(api: ApiServer, **changes: Any) -> Iterator[ApiServer]:
    """Another API on the same settings but ``changes`` (and the same test keys)."""
    keys = {"keys": api.keys} if hasattr(api, "keys") else {}
    other = ApiServer(replace(api.settings, **changes), **keys).start()
    try:
        yield other
    finally:
        other.stop()


@pytest.fixture
def small_api(api: ApiServer) -> Iterator[ApiServer]:
    """An API allowing one stream, with a heartbeat every 0.1 s."""
    yield from server(api, events_max_clients=1, events_heartbeat=0.1)


async def test_a_stream_gets_jobs_ready_and_finished(api: ApiServer) -> None:
    await register(api, "add")
    async with events(api.url, auth(api)) as stream:
        job_id = await run_one(api, "add")
        ready = await stream.until("job.ready", function="add")
        assert ready["count"] == 1 and isinstance(ready["at"], int)
        await stream.until("job.finished", job=job_id)


async def test_a_run_streams_each_status_to_completed(
    api: ApiServer, client: AsyncClient, orchestrator: object
) -> None:
    settings = {"workflows": [gate], "shutdown_grace": 1.0}
    async with (
        Worker(settings, url=api.url, machine_id="ev-m1"),
        events(api.url, auth(api), kind="run.status", run="r-1") as stream,
    ):
        await client.start("gate", 3, id="r-1")
        statuses = []
        while "waiting" not in statuses:
            statuses.append((await stream.until("run.status"))["status"])
        assert statuses[:2] == ["queued", "running"]
        await client.approve("r-1", "go", comment="fine")
        while statuses[-1] != "completed":
            statuses.append((await stream.until("run.status"))["status"])
    assert statuses[-3:] == ["queued", "running", "completed"]


async def test_filters_keep_only_the_events_asked_for(api: ApiServer) -> None:
    await register(api, "add", "mul")
    async with events(api.url, auth(api), kind="job.ready", function="mul") as stream:
        await run_one(api, "add")
        await run_one(api, "mul")
        kind, data = await stream.frame()
        assert kind == "job.ready" and data["function"] == "mul"


async def test_an_unknown_kind_is_refused_in_the_error_shape(api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=auth(api)) as http:
        response = await http.get("/v1/events", params={"kind": "job.ready,everything"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_a_filter_with_a_malformed_id_is_refused(api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=auth(api)) as http:
        response = await http.get("/v1/events", params={"run": "x" * 5000})
    assert response.status_code in (400, 422)
    assert "error" in response.json()


async def test_streams_past_the_limit_are_refused_with_503(small_api: ApiServer) -> None:
    async with events(small_api.url, auth(small_api)):
        async with httpx.AsyncClient(base_url=small_api.url, headers=auth(small_api)) as http:
            response = await http.get("/v1/events")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "too_many_streams"


async def test_a_client_that_leaves_frees_its_slot(small_api: ApiServer) -> None:
    async with events(small_api.url, auth(small_api)):
        pass
    for _ in range(500):  # the server notices the disconnect asynchronously
        async with (
            httpx.AsyncClient(base_url=small_api.url, headers=auth(small_api)) as http,
            http.stream("GET", "/v1/events") as response,
        ):
            if response.status_code == 200:
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the slot was never freed")


async def test_an_idle_stream_gets_heartbeat_comments(small_api: ApiServer) -> None:
    async with events(small_api.url, auth(small_api)) as stream:
        await stream.comment("ping", timeout=2)


async def test_open_streams_are_a_gauge_of_metrics(api: ApiServer) -> None:
    async with (
        events(api.url, auth(api)),
        httpx.AsyncClient(base_url=api.url, headers=auth(api)) as http,
    ):
        text = (await http.get("/metrics")).text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["tether_event_streams"] == 1
    assert samples["tether_events_dropped_total"] == 0


@pytest.fixture
async def notifier(redis: Redis, keys: Keys) -> AsyncIterator[Notifier]:
    """A notifier fed by hand (dispatch), never subscribed."""
    yield Notifier(redis, redis, keys)


async def next_frame(frames: AsyncIterator[str]) -> str:
    async with asyncio.timeout(2):
        return await anext(frames)


async def test_a_slow_reader_loses_the_newest_events_and_is_told_how_many(
    notifier: Notifier,
) -> None:
    hub = EventHub(max_clients=10, queue_size=2, heartbeat=5)
    frames = hub.frames(notifier, EventFilter())
    assert "connected" in await next_frame(frames)
    for n in range(5):
        notifier.dispatch(f"j:job-{n}")
    assert hub.dropped == 3
    assert "job-0" in await next_frame(frames)
    assert "job-1" in await next_frame(frames)
    assert '"count":3' in await next_frame(frames)  # told where the gap is
    await frames.aclose()
    assert hub.clients == 0


async def test_closing_the_hub_ends_every_stream_and_refuses_new_ones(
    notifier: Notifier,
) -> None:
    hub = EventHub(max_clients=10, queue_size=2, heartbeat=5)
    frames = hub.frames(notifier, EventFilter())
    await next_frame(frames)
    for n in range(3):
        notifier.dispatch(f"j:job-{n}")  # a full buffer must not keep the end out
    notifier.close_waits()  # what a shutdown signal does
    seen = [frame async for frame in frames]
    assert len(seen) <= 2 and hub.clients == 0
    with pytest.raises(Exception, match="event streams"):
        hub.check_room()


def test_notifications_map_to_events() -> None:
    assert parse_message("q:add 3") == [("job.ready", {"function": "add", "count": 3})]
    assert parse_message("j:a b") == [
        ("job.finished", {"job": "a"}),
        ("job.finished", {"job": "b"}),
    ]
    assert parse_message("s:r1 waiting") == [("run.status", {"run": "r1", "status": "waiting"})]
    assert parse_message("r:r1") == []  # a run finished: its s: message says how
    assert parse_message("x:whatever") == []


@pytest.mark.parametrize(("role", "status"), [("viewer", 200), ("machine", 403)])
async def test_the_stream_is_open_to_keys_that_may_read_and_only_those(
    api: ApiServer, role: str, status: int
) -> None:
    async with (
        httpx.AsyncClient(base_url=api.url, headers=api.headers(role)) as http,
        http.stream("GET", "/v1/events") as response,
    ):
        assert response.status_code == status


async def test_the_stream_without_a_key_is_401(api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        response = await http.get("/v1/events")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
