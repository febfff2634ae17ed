"""POST /v1/jobs with ``expires`` (seconds from now, or an ISO 8601 time), and with an
idempotency key reused for another input (409 ``idempotency_key_reused``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from api_helpers import Register, error_of

from tether.limits import MAX_EXPIRES, MAX_ID_LENGTH
from tether.queue.engine import QueueEngine


async def make_due(engine: QueueEngine, job_id: str) -> None:
    """The job's expiry comes now (scripts read Redis's clock)."""
    pk = engine.keys.for_id(job_id)
    await engine.redis.hset(pk.job(job_id), "expires_at", 1)
    await engine.redis.zadd(pk.expiring, {job_id: 1}, xx=True)


async def test_a_job_given_expires_in_seconds_shows_when_it_expires(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    response = await client.post("/v1/jobs", json={"function": "add", "expires": 60})

    assert response.status_code == 201
    job = response.json()
    ahead = datetime.fromisoformat(job["expires_at"]) - datetime.fromisoformat(job["enqueued_at"])
    assert ahead == timedelta(seconds=60)
    stored = (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert stored["expires_at"] == job["expires_at"]


async def test_a_job_given_expires_as_a_time_expires_then(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    at = datetime.now(UTC) + timedelta(hours=1)
    response = await client.post("/v1/jobs", json={"function": "add", "expires": at.isoformat()})

    assert response.status_code == 201
    expires_at = datetime.fromisoformat(response.json()["expires_at"])
    assert abs(expires_at - at) < timedelta(seconds=2)  # Redis's clock, not the caller's


async def test_a_job_without_expires_never_expires(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    response = await client.post("/v1/jobs", json={"function": "add"})

    assert response.json()["expires_at"] is None


async def test_an_expires_time_already_past_creates_the_job_expired(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    response = await client.post("/v1/jobs", json={"function": "add", "expires": past})

    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "expired"
    assert job["finished_at"] is not None and job["error"]["type"] == "Expired"
    assert await api_engine.queue_depth("add") == 0


@pytest.mark.parametrize(
    "expires",
    [
        0,
        -1,
        MAX_EXPIRES + 1,
        1e308,
        "soon",
        "2026-01-01T00:00:00",  # no UTC offset: ambiguous
        (datetime.now(UTC) + timedelta(seconds=MAX_EXPIRES + 86400)).isoformat(),
        True,
        [],
    ],
    ids=[
        "zero",
        "negative",
        "over-the-limit",
        "huge",
        "not-a-time",
        "naive-time",
        "time-too-far",
        "boolean",
        "list",
    ],
)
async def test_an_odd_expires_is_422_naming_the_field_and_creates_nothing(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine, expires: object
) -> None:
    await register("add")
    response = await client.post("/v1/jobs", json={"function": "add", "expires": expires})

    assert response.status_code == 422, response.text
    fields = error_of(response)["details"]["fields"]
    assert any(f["field"].startswith("expires") for f in fields), fields
    assert (await api_engine.list_jobs())[0] == []


async def test_nan_and_infinity_as_expires_are_refused(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    for raw in (
        b'{"function": "add", "expires": NaN}',
        b'{"function": "add", "expires": Infinity}',
    ):
        response = await client.post(
            "/v1/jobs", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422), response.text


async def test_a_waiter_hears_at_once_that_its_job_expired(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    job_id = (await client.post("/v1/jobs", json={"function": "add", "expires": 60})).json()["id"]
    waiting = asyncio.create_task(client.get(f"/v1/jobs/{job_id}", params={"wait": 30}))
    await asyncio.sleep(0.2)
    await make_due(api_engine, job_id)

    started = asyncio.get_running_loop().time()
    await api_engine.expire()
    response = await asyncio.wait_for(waiting, 10)

    assert response.json()["status"] == "expired"
    assert asyncio.get_running_loop().time() - started < 2


async def test_post_with_wait_answers_an_already_expired_job_at_once(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    response = await client.post(
        "/v1/jobs", json={"function": "add", "expires": past}, params={"wait": 30}
    )

    assert (response.status_code, response.json()["status"]) == (201, "expired")


async def test_a_batch_takes_an_expiry_per_job(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    response = await client.post(
        "/v1/jobs/batch", json={"jobs": [{"function": "add", "expires": 30}, {"function": "add"}]}
    )

    jobs = response.json()["jobs"]
    assert [j["expires_at"] is not None for j in jobs] == [True, False]


async def test_listing_jobs_filters_expired_ones(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = (await client.post("/v1/jobs", json={"function": "add", "expires": past})).json()
    await client.post("/v1/jobs", json={"function": "add"})

    listed = (await client.get("/v1/jobs", params={"status": "expired"})).json()["jobs"]

    assert [j["id"] for j in listed] == [expired["id"]]


# -- a key reused with another input -----------------------------------------------------


async def test_a_key_reused_with_another_input_is_409_naming_the_existing_job(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    first = await client.post(
        "/v1/jobs", json={"function": "add", "input": 1, "idempotency_key": "order-7"}
    )
    again = await client.post(
        "/v1/jobs", json={"function": "add", "input": 2, "idempotency_key": "order-7"}
    )

    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "idempotency_key_reused"
    assert error["details"]["id"] == first.json()["id"]
    assert error["details"]["idempotency_key"] == "order-7"
    assert (await client.get(f"/v1/jobs/{first.json()['id']}")).json()["input"] == 1


async def test_a_key_reused_with_the_same_input_in_another_key_order_answers_200(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    first = await client.post(
        "/v1/jobs", json={"function": "add", "input": {"a": 1, "b": 2}, "idempotency_key": "k"}
    )
    again = await client.post(
        "/v1/jobs", json={"function": "add", "input": {"b": 2, "a": 1}, "idempotency_key": "k"}
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


async def test_a_key_reused_with_other_options_answers_with_the_first_job(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    body = {"function": "add", "input": 1, "idempotency_key": "k"}
    first = await client.post("/v1/jobs", json=body)
    again = await client.post("/v1/jobs", json={**body, "max_attempts": 9, "expires": 5})

    assert again.status_code == 200
    assert again.json()["max_attempts"] == first.json()["max_attempts"]
    assert again.json()["expires_at"] is None


async def test_a_key_reused_with_another_input_while_waiting_is_409(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs", json={"function": "add", "input": 1, "idempotency_key": "w"})
    again = await client.post(
        "/v1/jobs",
        json={"function": "add", "input": 2, "idempotency_key": "w"},
        params={"wait": 5},
    )

    assert (again.status_code, error_of(again)["code"]) == (409, "idempotency_key_reused")


async def test_a_key_of_the_longest_length_reused_with_another_input_is_409(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    key = "k" * MAX_ID_LENGTH
    first = await client.post(
        "/v1/jobs", json={"function": "add", "input": 1, "idempotency_key": key}
    )
    again = await client.post(
        "/v1/jobs", json={"function": "add", "input": 2, "idempotency_key": key}
    )

    assert (first.status_code, again.status_code) == (201, 409)


async def test_a_key_reused_for_another_function_stays_idempotency_conflict(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add", "mul")
    await client.post("/v1/jobs", json={"function": "add", "input": 1, "idempotency_key": "f"})
    again = await client.post(
        "/v1/jobs", json={"function": "mul", "input": 2, "idempotency_key": "f"}
    )

    assert (again.status_code, error_of(again)["code"]) == (409, "idempotency_conflict")
