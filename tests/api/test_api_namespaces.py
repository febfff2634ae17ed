"""Namespaces (tenants): two of them on one API and one Redis, and nothing crosses - no
list, get, wait, cancel, approval, signal, poll, claim, machine, function or metric.

The tenants are ``default`` (the test's usual keys) and ``acme`` (keys ``acme-<role>``);
both use the same function name, machine id and idempotency key on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_helpers import client_for, error_of
from auth_helpers import TestKeys, create_keys
from litestar import Litestar
from redis.asyncio import Redis

from tether.api.services import Services
from tether.queue.keys import Keys


@dataclass
class Tenant:
    name: str
    app: httpx.AsyncClient  # app key
    machine: httpx.AsyncClient  # machine key
    approver: httpx.AsyncClient
    viewer: httpx.AsyncClient
    services: Services

    async def register(self, *functions: str, machine: str = "m1") -> None:
        body = {"functions": [{"name": fn} for fn in functions]}
        response = await self.machine.post(f"/v1/machines/{machine}/heartbeat", json=body)
        assert response.status_code == 200, response.text

    async def submit(self, function: str = "f", **extra: Any) -> dict[str, Any]:
        response = await self.app.post("/v1/jobs", json={"function": function, **extra})
        assert response.status_code in (200, 201), response.text
        job: dict[str, Any] = response.json()
        return job

    async def poll(self, wait: float = 0, machine: str = "m1") -> list[dict[str, Any]]:
        body = {"functions": ["f"], "max_jobs": 10, "wait": wait}
        response = await self.machine.post(f"/v1/machines/{machine}/poll", json=body)
        assert response.status_code == 200, response.text
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs


@pytest.fixture
async def acme_keys(redis: Redis, keys: Keys) -> TestKeys:
    return await create_keys(redis, keys.prefix, "acme")


@pytest.fixture
async def tenants(
    app: Litestar, test_keys: TestKeys, acme_keys: TestKeys
) -> AsyncIterator[tuple[Tenant, Tenant]]:
    made = []
    clients = []
    for name, ks in (("default", test_keys), ("acme", acme_keys)):
        c = [
            client_for(app, getattr(ks, role)) for role in ("app", "machine", "approver", "viewer")
        ]
        clients += c
        made.append(Tenant(name, *c, services=app.state.tenants.get(name)))
    try:
        yield made[0], made[1]
    finally:
        for c in clients:
            await c.aclose()


async def test_jobs_of_one_namespace_are_404_in_another(tenants: tuple[Tenant, Tenant]) -> None:
    default, acme = tenants
    await default.register("f")
    job = await default.submit()

    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}?wait=1"):
        response = await acme.viewer.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"
    assert (await acme.app.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 404
    assert (await default.viewer.get(f"/v1/jobs/{job['id']}")).json()["status"] == "queued"


async def test_job_lists_show_only_their_namespace(tenants: tuple[Tenant, Tenant]) -> None:
    default, acme = tenants
    await default.register("f")
    await acme.register("f")
    ours = await default.submit(idempotency_key="same-key")
    theirs = await acme.submit(idempotency_key="same-key")

    listed_default = {j["id"] for j in (await default.viewer.get("/v1/jobs")).json()["jobs"]}
    listed_acme = {j["id"] for j in (await acme.viewer.get("/v1/jobs")).json()["jobs"]}

    assert listed_default == {ours["id"]}
    assert listed_acme == {theirs["id"]}


async def test_a_function_registered_in_one_namespace_is_unknown_in_another(
    tenants: tuple[Tenant, Tenant],
) -> None:
    default, acme = tenants
    await default.register("only_here")

    response = await acme.app.post("/v1/jobs", json={"function": "only_here"})

    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_function"


async def test_a_poll_claims_only_jobs_of_its_namespace(tenants: tuple[Tenant, Tenant]) -> None:
    default, acme = tenants
    await default.register("f")
    await acme.register("f")  # the same machine id, in its own namespace
    job = await default.submit()

    assert await acme.poll() == []
    assert [j["id"] for j in await default.poll()] == [job["id"]]


async def test_a_waiting_poll_is_woken_by_its_own_namespace_only(
    tenants: tuple[Tenant, Tenant],
) -> None:
    default, acme = tenants
    await default.register("f")
    await acme.register("f")
    waiting = asyncio.create_task(acme.poll(wait=10))
    await asyncio.sleep(0.2)

    await default.submit()  # same function name, other namespace
    await asyncio.sleep(0.3)
    assert not waiting.done()

    job = await acme.submit()
    jobs = await asyncio.wait_for(waiting, 2.0)
    assert [j["id"] for j in jobs] == [job["id"]]


async def test_machines_functions_and_metrics_show_only_their_namespace(
    tenants: tuple[Tenant, Tenant],
) -> None:
    default, acme = tenants
    await acme.register("acme_secret_fn", machine="acme-box")
    await default.register("f", machine="default-box")
    await acme.submit("acme_secret_fn")

    for path in ("/v1/machines", "/v1/functions", "/metrics"):
        seen_by_default = (await default.viewer.get(path)).text
        seen_by_acme = (await acme.viewer.get(path)).text
        assert "acme_secret_fn" not in seen_by_default and "acme-box" not in seen_by_default
        assert "acme_secret_fn" in seen_by_acme or path == "/v1/machines"
        assert "default-box" not in seen_by_acme
    assert "acme-box" in (await acme.viewer.get("/v1/machines")).text


async def test_runs_approvals_and_signals_do_not_cross(tenants: tuple[Tenant, Tenant]) -> None:
    default, acme = tenants
    run = await default.services.runs.start("flow", 1, run_id="order-1")
    await acme.services.runs.start("flow", 2, run_id="order-1")  # same id, other tenant

    approve = await acme.approver.post("/v1/runs/acme-only/approvals/ship", json={"approved": True})
    assert approve.status_code == 404
    # acme's own order-1 is acme's: deciding it leaves default's order-1 undecided.
    decided = await acme.approver.post("/v1/runs/order-1/approvals/ship", json={"approved": True})
    assert decided.status_code == 200, decided.text
    assert await default.services.runs.approvals(run.id) == {}
    assert (await acme.services.runs.approvals("order-1"))["ship"]["by"] == "acme-approver"

    await acme.approver.post("/v1/runs/order-1/signals/go", json={"payload": 1})
    default_events = await default.services.runs.timeline(run.id, 100)
    assert not [e for e in default_events if e["event"] == "signal_received"]

    listed = (await default.viewer.get("/v1/runs")).json()["runs"]
    assert [(r["id"], r["input"]) for r in listed] == [("order-1", 1)]
    assert (await acme.viewer.get("/v1/runs/order-1")).json()["input"] == 2


async def test_a_run_of_another_namespace_is_404_for_every_run_route(
    tenants: tuple[Tenant, Tenant],
) -> None:
    default, acme = tenants
    run = await default.services.runs.start("flow", 1)
    rid = run.id

    calls = [
        acme.viewer.get(f"/v1/runs/{rid}"),
        acme.viewer.get(f"/v1/runs/{rid}?wait=1"),
        acme.viewer.get(f"/v1/runs/{rid}/timeline"),
        acme.approver.post(f"/v1/runs/{rid}/approvals/ship", json={"approved": True}),
        acme.approver.post(f"/v1/runs/{rid}/signals/go", json={"payload": 1}),
        acme.app.post(f"/v1/runs/{rid}/cancel"),
        acme.app.post(f"/v1/runs/{rid}/retry"),
    ]
    for response in await asyncio.gather(*calls):
        assert response.status_code == 404, response.request.url
    assert (await default.viewer.get(f"/v1/runs/{rid}")).json()["status"] == "queued"


async def test_namespaced_keys_live_under_their_own_hash_tag(
    tenants: tuple[Tenant, Tenant], redis: Redis, keys: Keys
) -> None:
    _, acme = tenants
    await acme.register("f")
    job = await acme.submit()

    record = Keys(prefix=keys.prefix, namespace="acme").for_id(job["id"]).job(job["id"])
    assert record.startswith(f"{{{keys.prefix}:acme:0}}:")
    assert await redis.hget(record, "status") == "queued"


async def test_the_api_signs_of_life_in_every_namespace_for_its_orchestrator(
    settings: Any, redis: Redis, keys: Keys, acme_keys: TestKeys
) -> None:
    from api_helpers import running

    from tether.api.app import create_app

    acme_apis = Keys(prefix=keys.prefix, namespace="acme").partition(0).apis
    async with running(create_app(settings)):
        for _ in range(100):
            if await redis.zcard(acme_apis):
                break
            await asyncio.sleep(0.05)
    assert await redis.zcard(acme_apis) >= 1
    assert await redis.zcard(keys.partition(0).apis) >= 1


async def test_log_lines_cannot_be_written_or_read_across_namespaces(
    tenants: tuple[Tenant, Tenant],
) -> None:
    default, acme = tenants
    await default.register("f")
    await acme.register("f")
    job = await default.submit()
    (leased,) = await default.poll()
    batch = {"job": job["id"], "token": leased["token"], "lines": [
        '{"ts": 1.0, "level": "INFO", "message": "forged from acme"}'
    ]}  # fmt: skip

    response = await acme.machine.post("/v1/machines/m1/logs", json={"batches": [batch]})

    assert response.json()["batches"][0]["reason"] == "not_found"
    assert (await acme.viewer.get(f"/v1/jobs/{job['id']}/logs")).status_code == 404
    assert (await default.viewer.get(f"/v1/jobs/{job['id']}/logs")).json()["lines"] == []
