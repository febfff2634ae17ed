"""/healthz, /metrics and the OpenAPI schema."""

from __future__ import annotations

import httpx

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
