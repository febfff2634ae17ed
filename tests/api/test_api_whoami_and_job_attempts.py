"""What the dashboard needs beyond the JSON of jobs and runs: who the signed-in key is
(so it offers only what the key may do), and every attempt of a job."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from api_helpers import client_for, running
from auth_helpers import TestKeys
from litestar import Litestar

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.protocol import ApprovalWait, ErrorInfo, activation_function
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine

BOOM = ErrorInfo(type="ValueError", message="boom")


@pytest.mark.parametrize(
    ("role", "may"),
    [
        ("admin", {"read", "submit", "decide", "machine", "admin"}),
        ("app", {"read", "submit"}),
        ("approver", {"read", "decide"}),
        ("viewer", {"read"}),
        ("machine", {"machine"}),
    ],
)
async def test_whoami_names_the_key_its_role_and_what_it_may_do(
    app: Litestar, test_keys: TestKeys, role: str, may: set[str]
) -> None:
    async with client_for(app, getattr(test_keys, role)) as c:
        response = await c.get("/v1/whoami")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["role"], body["namespace"]) == (f"test-{role}", role, "default")
    assert set(body["permissions"]) == may | {"public", "self"}


async def test_whoami_without_a_key_is_401(app: Litestar) -> None:
    async with client_for(app) as c:
        assert (await c.get("/v1/whoami")).status_code == 401


async def test_a_viewer_cannot_approve_a_waiting_run(
    app: Litestar, test_keys: TestKeys, api_engine: QueueEngine
) -> None:
    runs = RunEngine(api_engine.redis, api_engine.config)
    await runs.start("w", None, run_id="r1", version=1)
    [act] = await api_engine.claim("m1", [activation_function("w", 1)], 1)
    await runs.begin("r1", act.id, act.token, machine="m1")
    await runs.suspend("r1", act.id, act.token, ApprovalWait(0, "ship"), machine="m1")

    async with client_for(app, test_keys.viewer) as viewer:
        refused = await viewer.post("/v1/runs/r1/approvals/ship", json={"approved": True})
        seen = await viewer.get("/v1/runs/r1")

    assert refused.status_code == 403
    assert seen.json()["status"] == "waiting"


@pytest.fixture
async def timelines_client(
    settings: ApiSettings, test_keys: TestKeys
) -> AsyncIterator[tuple[httpx.AsyncClient, QueueEngine]]:
    application = create_app(dataclasses.replace(settings, job_timelines=True))
    async with running(application), client_for(application, test_keys.admin) as c:
        yield c, application.state.engine


async def test_a_jobs_timeline_holds_every_attempt_and_how_each_ended(
    timelines_client: tuple[httpx.AsyncClient, QueueEngine],
) -> None:
    client, engine = timelines_client
    job = await engine.enqueue("f", 1, max_attempts=2)
    [first] = await engine.claim("m1", ["f"], 1)
    await engine.fail(job.id, first.token, BOOM, machine="m1", retry_in_ms=1)
    await asyncio.sleep(0.01)
    await engine.promote(10)
    [second] = await engine.claim("m2", ["f"], 1)
    await engine.fail(job.id, second.token, BOOM, machine="m2")

    events = (await client.get(f"/v1/jobs/{job.id}/timeline")).json()["events"]

    claims = [
        (e["fields"]["attempt"], e["fields"]["machine"]) for e in events if e["event"] == "claimed"
    ]
    assert claims == [("1", "m1"), ("2", "m2")]
    ends = [e["event"] for e in events if e["event"] in ("retry_scheduled", "dead")]
    assert ends == ["retry_scheduled", "dead"]


async def test_a_run_jobs_timeline_is_picked_out_of_its_runs(
    client: httpx.AsyncClient, api_engine: QueueEngine
) -> None:
    runs = RunEngine(api_engine.redis, api_engine.config)
    await runs.start("w", None, run_id="r1", version=1)
    [act] = await api_engine.claim("m1", [activation_function("w", 1)], 1)

    events = (await client.get(f"/v1/jobs/{act.id}/timeline")).json()["events"]

    assert [e["event"] for e in events] == ["activation_queued", "claimed"]
    assert {e["fields"]["job"] for e in events} == {act.id}


async def test_the_timeline_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/jobs/nope/timeline")).status_code == 404
