"""/healthz, /metrics and the OpenAPI schema."""

from __future__ import annotations

import httpx
from api_helpers import Register

from tether.api.routes import ROUTE_HANDLERS

V1_PATHS = {
    "/v1/machines",
    "/v1/machines/{machine_id}/heartbeat",
    "/v1/machines/{machine_id}/poll",
    "/v1/machines/{machine_id}/results",
    "/v1/jobs",
    "/v1/jobs/batch",
    "/v1/jobs/{job_id}",
    "/v1/jobs/{job_id}/cancel",
    "/v1/functions",
    "/v1/schedules",
    "/v1/schedules/{name}",
    "/v1/schedules/{name}/pause",
    "/v1/schedules/{name}/resume",
    "/v1/schedules/{name}/trigger",
}


async def test_healthz_is_ok_when_redis_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": "ok", "notifications": True}


async def test_metrics_count_requests_by_route_and_status(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.get("/v1/jobs/missing")
    text = (await client.get("/metrics")).text
    assert (
        'tether_http_requests_total{method="POST",route="/v1/machines/{machine_id}/heartbeat",'
        'status="200"} 1'
    ) in text
    assert 'tether_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"} 1' in (
        text
    )


async def test_metrics_count_jobs_and_show_queue_depths_and_machines(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs/batch", json={"jobs": [{"function": "add"}] * 3})
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(response.text.splitlines())
    assert "tether_jobs_enqueued_total 3" in lines
    assert 'tether_queue_depth{function="add"} 3' in lines
    assert "tether_machines_live 1" in lines
    assert "tether_long_polls_waiting 0" in lines
    assert "tether_redis_up 1" in lines


async def test_metrics_count_completed_jobs_and_rejected_results(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs", json={"function": "add"})
    [job] = (await client.post("/v1/machines/m1/poll", json={"functions": ["add"]})).json()["jobs"]
    done = {"id": job["id"], "token": job["token"], "status": "completed"}
    await client.post("/v1/machines/m1/results", json={"results": [done, done]})
    lines = set((await client.get("/metrics")).text.splitlines())
    assert "tether_jobs_completed_total 1" in lines
    assert "tether_results_rejected_total 1" in lines


async def test_the_openapi_schema_lists_every_v1_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert paths >= V1_PATHS | {"/healthz", "/metrics"}


async def test_the_openapi_schema_describes_the_request_bodies(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    ref = body["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][ref]["properties"]) >= {
        "function",
        "input",
        "idempotency_key",
        "delay",
    }


def test_every_controller_is_in_the_one_route_list() -> None:
    names = {getattr(h, "__name__", "") for h in ROUTE_HANDLERS}
    assert {
        "MachinesController",
        "JobsController",
        "FunctionsController",
        "OpsController",
        "SchedulesController",
    } <= names


async def test_the_openapi_schema_documents_errors_in_the_one_error_shape(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    responses = schema["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"201", "400", "404", "409", "413", "422", "503"} <= set(responses)
    ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[-1] == "ErrorBody"


async def test_the_openapi_schema_describes_what_a_poll_answers(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    ok = schema["paths"]["/v1/machines/{machine_id}/poll"]["post"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[-1] == "PollResponse"
