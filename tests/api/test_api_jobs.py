"""POST/GET /v1/jobs: submit, read, wait for, cancel and list jobs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from api_helpers import Register, error_of, until

from tether.api.notify import Notifier
from tether.queue.engine import QueueEngine
from tether.queue.records import ClaimedJob


async def test_submitting_a_job_answers_201_with_its_record(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    response = await client.post("/v1/jobs", json={"function": "add", "input": {"a": 1}})
    assert response.status_code == 201
    job = response.json()
    assert job["function"] == "add"
    assert job["status"] == "queued"
    assert job["input"] == {"a": 1}
    assert job["attempt"] == 0
    got = await client.get(f"/v1/jobs/{job['id']}")
    assert got.json()["status"] == "queued"


async def test_the_same_idempotency_key_answers_200_with_the_same_job(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    body = {"function": "add", "input": 1, "idempotency_key": "order-7"}
    first = await client.post("/v1/jobs", json=body)
    again = await client.post("/v1/jobs", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


async def test_an_idempotency_key_reused_for_another_function_is_409(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add", "mul")
    await client.post("/v1/jobs", json={"function": "add", "idempotency_key": "k"})
    response = await client.post("/v1/jobs", json={"function": "mul", "idempotency_key": "k"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_conflict"


async def test_a_job_of_a_function_no_machine_registered_is_404_telling_to_start_a_worker(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/jobs", json={"function": "nobody_serves_me"})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_function"
    assert "nobody_serves_me" in error["message"]
    assert "start a worker" in error["message"]
    assert error["details"] == {"function": "nobody_serves_me"}


async def test_a_job_takes_the_timeout_and_attempts_its_function_registered(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("slow", timeout=7.5, max_attempts=2)
    job = (await client.post("/v1/jobs", json={"function": "slow"})).json()
    assert job["max_attempts"] == 2
    record = await api_engine.get_job(job["id"])
    assert (record.timeout_ms, record.max_attempts) == (7500, 2)


async def test_a_delay_creates_a_delayed_job(client: httpx.AsyncClient, register: Register) -> None:
    await register("later")
    response = await client.post("/v1/jobs", json={"function": "later", "delay": 3600})
    assert response.json()["status"] == "delayed"


@pytest.mark.parametrize("delay", [0, 30])
async def test_the_answer_to_a_submit_carries_the_stored_timestamps(
    client: httpx.AsyncClient, register: Register, delay: float
) -> None:
    # Redis's clock is the only clock: what the POST answers is what GET shows later.
    await register("add")
    created = (
        await client.post("/v1/jobs", json={"function": "add", "input": 1, "delay": delay})
    ).json()
    stored = (await client.get(f"/v1/jobs/{created['id']}")).json()
    times = ("enqueued_at", "scheduled_at")
    assert {k: created[k] for k in times} == {k: stored[k] for k in times}


async def test_a_batch_creates_every_job(client: httpx.AsyncClient, register: Register) -> None:
    await register("add")
    body = {"jobs": [{"function": "add", "input": i} for i in range(5)]}
    response = await client.post("/v1/jobs/batch", json=body)
    assert response.status_code == 201
    jobs = response.json()["jobs"]
    assert [j["input"] for j in jobs] == [0, 1, 2, 3, 4]
    assert len({j["id"] for j in jobs}) == 5


async def test_a_batch_with_an_unknown_function_creates_nothing(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    body = {"jobs": [{"function": "add"}, {"function": "ghost"}]}
    response = await client.post("/v1/jobs/batch", json=body)
    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_function"
    listed = await client.get("/v1/jobs")
    assert listed.json()["jobs"] == []


async def test_getting_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/jobs/no-such-job")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


async def test_get_with_wait_returns_as_soon_as_the_job_completes(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine, notifier: Notifier
) -> None:
    await register("add")
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    waiting = asyncio.create_task(client.get(f"/v1/jobs/{job_id}", params={"wait": 30}))
    await until(lambda: notifier.waiting_jobs == 1)
    [claimed] = await api_engine.claim("m1", ["add"], 1)
    await api_engine.complete(job_id, claimed.token, {"sum": 3}, machine=claimed.machine)
    response = await waiting
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["result"] == {"sum": 3}


async def test_get_with_wait_answers_the_job_as_it_is_when_the_wait_elapses(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": 0.05})
    assert response.status_code == 200
    assert response.json()["status"] == "queued"


async def test_absurd_wait_values_are_422_naming_wait(client: httpx.AsyncClient) -> None:
    for wait in ("1e9", "-1", "soon", "nan", "inf"):
        response = await client.get("/v1/jobs/any", params={"wait": wait})
        assert response.status_code == 422, (wait, response.text)
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert error["details"]["fields"][0]["field"] == "wait"


async def claim_when_ready(engine: QueueEngine, function: str) -> ClaimedJob:
    for _ in range(500):
        jobs = await engine.claim("m1", [function], 1)
        if jobs:
            return jobs[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {function} job became ready")


async def test_post_with_wait_answers_201_with_the_result_once_the_job_completes(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine, notifier: Notifier
) -> None:
    await register("add")
    body = {"function": "add", "input": 1}
    waiting = asyncio.create_task(client.post("/v1/jobs", json=body, params={"wait": 30}))
    await until(lambda: notifier.waiting_jobs == 1)
    # The wait begins before the enqueue reaches Redis: claim once the job is there.
    claimed = await claim_when_ready(api_engine, "add")
    await api_engine.complete(claimed.id, claimed.token, {"sum": 3}, machine=claimed.machine)
    response = await waiting
    assert response.status_code == 201
    assert response.json()["id"] == claimed.id
    assert response.json()["status"] == "completed"
    assert response.json()["result"] == {"sum": 3}


async def test_post_with_wait_answers_the_queued_job_when_the_wait_elapses(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    response = await client.post("/v1/jobs", json={"function": "add"}, params={"wait": 0.05})
    assert response.status_code == 201
    assert response.json()["status"] == "queued"
    assert (await api_engine.get_job(response.json()["id"])).status == "queued"


async def test_post_with_wait_and_a_finished_idempotent_job_answers_200_at_once(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    body = {"function": "add", "idempotency_key": "once"}
    first = (await client.post("/v1/jobs", json=body)).json()
    [claimed] = await api_engine.claim("m1", ["add"], 1)
    await api_engine.complete(first["id"], claimed.token, 7, machine=claimed.machine)
    again = await client.post("/v1/jobs", json=body, params={"wait": 30})
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["result"]) == ("completed", 7)


async def test_absurd_wait_values_on_post_are_422_naming_wait_and_create_nothing(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    for wait in ("1e9", "-1", "soon", "nan", "inf"):
        response = await client.post("/v1/jobs", json={"function": "add"}, params={"wait": wait})
        assert response.status_code == 422, (wait, response.text)
        assert error_of(response)["details"]["fields"][0]["field"] == "wait"
    assert (await api_engine.list_jobs())[0] == []


async def test_cancelling_a_queued_job_cancels_it(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    response = await client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


async def test_cancelling_a_running_job_marks_it_for_its_machine(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    await api_engine.claim("m1", ["add"], 1)
    response = await client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True


async def test_cancelling_a_finished_job_is_409(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    await client.post(f"/v1/jobs/{job_id}/cancel")
    response = await client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_transition"


async def test_cancelling_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/jobs/ghost/cancel")
    assert response.status_code == 404


async def test_listing_jobs_filters_by_status_and_function(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add", "mul")
    keep = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    gone = (await client.post("/v1/jobs", json={"function": "add"})).json()["id"]
    await client.post("/v1/jobs", json={"function": "mul"})
    await client.post(f"/v1/jobs/{gone}/cancel")
    response = await client.get("/v1/jobs", params={"status": "queued", "function": "add"})
    assert [j["id"] for j in response.json()["jobs"]] == [keep]


async def test_listing_jobs_honours_the_limit(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs/batch", json={"jobs": [{"function": "add"}] * 3})
    response = await client.get("/v1/jobs", params={"limit": 2})
    assert len(response.json()["jobs"]) == 2


async def test_listing_jobs_with_an_unknown_status_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/jobs", params={"status": "sleeping"})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "status"


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/runs"])
@pytest.mark.parametrize("value", ["0.0", "1700000000", "yesterday", "2026-13-45T00:00"])
async def test_a_listing_time_that_is_not_iso_8601_is_422_naming_it(
    client: httpx.AsyncClient, path: str, value: str
) -> None:
    response = await client.get(path, params={"created_before": value})
    assert response.status_code == 422, response.text
    assert "created_before" in response.text


async def test_a_listing_time_in_iso_8601_filters(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/jobs", params={"created_after": "2026-01-01T00:00:00Z"})
    assert response.status_code == 200, response.text
