"""Priorities, concurrency keys and a function's limits over HTTP: POST /v1/jobs (and
batch) take them, GET /v1/jobs/{id} says why a job waits, /v1/limits/{function} sets
them (admins only), and bad values are a 422 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import Register, client_for, error_of
from auth_helpers import TestKeys
from litestar import Litestar

from tether.queue.engine import QueueEngine


async def poll(client: httpx.AsyncClient, n: int = 100) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/machines/m1/poll", json={"functions": ["fn"], "max_jobs": n, "wait": 0}
    )
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


async def test_a_job_submitted_with_a_priority_is_claimed_before_plain_ones(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")
    plain = (await client.post("/v1/jobs", json={"function": "fn"})).json()
    urgent = await client.post("/v1/jobs", json={"function": "fn", "priority": 50})

    assert urgent.status_code == 201
    assert urgent.json()["priority"] == 50
    assert [j["id"] for j in await poll(client)] == [urgent.json()["id"], plain["id"]]


async def test_a_batch_keeps_each_jobs_priority(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")
    body = {"jobs": [{"function": "fn", "input": p, "priority": p} for p in (-1, 3, 0, 3)]}
    response = await client.post("/v1/jobs/batch", json=body)

    assert response.status_code == 201
    assert [j["input"] for j in await poll(client)] == [3, 3, 0, -1]


async def test_get_job_says_a_job_waits_for_its_concurrency_key(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")
    body = {"function": "fn", "concurrency_key": "customer-7", "concurrency_limit": 1}
    await client.post("/v1/jobs", json=body)
    second = (await client.post("/v1/jobs", json=body)).json()
    assert len(await poll(client)) == 1

    job = (await client.get(f"/v1/jobs/{second['id']}")).json()

    assert job["status"] == "queued"
    assert job["concurrency_key"] == "customer-7"
    assert job["waiting_on"] == {"kind": "concurrency", "key": "customer-7", "limit": 1}


async def test_limits_put_are_read_back_and_bind_claims(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")
    limits = {"concurrency": 2, "rate": {"limit": 100, "period": 1.5}}
    put = await client.put("/v1/limits/fn", json=limits)
    for _ in range(4):
        await client.post("/v1/jobs", json={"function": "fn"})

    assert put.status_code == 200
    got = (await client.get("/v1/limits/fn")).json()
    assert got == {
        "function": "fn",
        "concurrency": 2,
        "key_concurrency": None,
        "rate": {"limit": 100, "period": 1.5},
        "key_rate": None,
    }
    assert len(await poll(client)) == 2


async def test_deleting_limits_lets_waiting_jobs_run(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")
    await client.put("/v1/limits/fn", json={"concurrency": 1})
    for _ in range(3):
        await client.post("/v1/jobs", json={"function": "fn"})
    assert len(await poll(client)) == 1

    deleted = await client.delete("/v1/limits/fn")

    assert deleted.json()["concurrency"] is None
    assert len(await poll(client)) == 2


async def test_a_queued_job_over_its_functions_rate_says_so(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")
    await client.put("/v1/limits/fn", json={"rate": {"limit": 1, "period": 3600}})
    await client.post("/v1/jobs", json={"function": "fn"})
    waiting = (await client.post("/v1/jobs", json={"function": "fn"})).json()
    await poll(client)

    job = (await client.get(f"/v1/jobs/{waiting['id']}")).json()

    assert job["status"] == "queued"
    assert job["waiting_on"]["kind"] == "rate_limit"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", 101),
        ("priority", -101),
        ("priority", 10**30),
        ("priority", "9"),
        ("priority", 1.5),
        ("concurrency_key", "k" * 10_240),
        ("concurrency_key", "no spaces"),
        ("concurrency_key", "a/b"),
        ("concurrency_limit", 0),
        ("concurrency_limit", -1),
        ("concurrency_limit", 10**9),
    ],
)
async def test_a_bad_queue_option_is_a_422_naming_the_field(
    client: httpx.AsyncClient, register: Register, field: str, value: object
) -> None:
    await register("fn")
    body = {"function": "fn", "concurrency_key": "k", field: value}

    response = await client.post("/v1/jobs", json=body)

    assert response.status_code == 422, response.text
    assert field in response.text
    assert await poll(client) == []


async def test_a_concurrency_limit_without_a_key_is_a_422(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("fn")

    response = await client.post("/v1/jobs", json={"function": "fn", "concurrency_limit": 2})

    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "concurrency_limit"


@pytest.mark.parametrize(
    "limits",
    [
        {"concurrency": -1},
        {"concurrency": 0},
        {"concurrency": 10**12},
        {"key_concurrency": 0},
        {"rate": {"limit": 0, "period": 1}},
        {"rate": {"limit": 10, "period": 0}},
        {"rate": {"limit": 10, "period": -5}},
        {"rate": {"limit": 10, "period": 10**9}},
        {"rate": {"limit": 10**12, "period": 1}},
        {"key_rate": {"limit": 1}},
        {"burst": 5},
    ],
)
async def test_bad_limits_are_a_422_and_change_nothing(
    client: httpx.AsyncClient, api_engine: QueueEngine, limits: dict[str, Any]
) -> None:
    await client.put("/v1/limits/fn", json={"concurrency": 3})

    response = await client.put("/v1/limits/fn", json=limits)

    assert response.status_code == 422, response.text
    assert (await api_engine.get_limits("fn")).concurrency == 3


async def test_a_function_name_no_key_could_hold_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/limits/" + "f" * 300, json={"concurrency": 1})

    assert response.status_code == 422


@pytest.mark.parametrize("role", ["app", "viewer", "machine"])
async def test_only_admins_may_set_limits(
    app: Litestar, test_keys: TestKeys, api_engine: QueueEngine, role: str
) -> None:
    async with client_for(app, getattr(test_keys, role)) as other:
        put = await other.put("/v1/limits/fn", json={"concurrency": 1})
        deleted = await other.delete("/v1/limits/fn")

    assert (put.status_code, deleted.status_code) == (403, 403)
    assert (await api_engine.get_limits("fn")).concurrency is None
