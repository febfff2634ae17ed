"""A web page open in a developer's browser cannot drive the API (CSRF): bodies are JSON
only, a foreign Origin changes nothing, CORS is off unless an allow-list says otherwise,
and nothing ambient (cookies) is ever set."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from api_helpers import Register, client_for, error_of, running
from auth_helpers import TestKeys
from litestar import Litestar

from tether.api.app import create_app
from tether.api.browsers import is_json_media_type
from tether.api.settings import ApiSettings
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.runs import RunEngine


async def _started_run(app: Litestar, workflow: str = "ship") -> str:
    runs: RunEngine = app.state.services.runs
    started = await runs.start(workflow, {"n": 1}, version=1)
    return started.id


async def test_a_text_plain_job_submission_is_415_and_creates_nothing(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    response = await client.post(
        "/v1/jobs",
        content=b'{"function": "add", "input": 1}',
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 415
    error = error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert error["details"]["content_type"] == "text/plain"
    assert (await api_engine.list_jobs(function="add"))[0] == []


async def test_a_text_plain_approval_is_415(client: httpx.AsyncClient, app: Litestar) -> None:
    run_id = await _started_run(app)
    response = await client.post(
        f"/v1/runs/{run_id}/approvals/ship",
        content=b'{"approved": true}',
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    runs: RunEngine = app.state.services.runs
    assert await runs.approvals(run_id) == {}


async def test_a_form_urlencoded_signal_is_415(client: httpx.AsyncClient, app: Litestar) -> None:
    run_id = await _started_run(app)
    response = await client.post(f"/v1/runs/{run_id}/signals/go", data={"payload": "1"})
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


async def test_a_multipart_heartbeat_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/machines/m1/heartbeat", files={"functions": ("f.json", b"[]")}
    )
    assert response.status_code == 415


async def test_a_body_without_a_content_type_is_415(client: httpx.AsyncClient) -> None:
    # httpx sends raw content with a content-length and no content type.
    response = await client.post("/v1/jobs", content=b'{"function": "add"}')
    assert response.status_code == 415
    assert error_of(response)["details"]["content_type"] is None


async def test_json_with_a_charset_or_a_json_suffix_is_accepted(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    for content_type in ("application/json; charset=utf-8", "application/vnd.tether+json"):
        response = await client.post(
            "/v1/jobs", content=b'{"function": "add"}', headers={"content-type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)


async def test_a_post_without_a_body_needs_no_content_type(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job = (await client.post("/v1/jobs", json={"function": "add"})).json()
    response = await client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_only_json_media_types_count_as_json() -> None:
    assert is_json_media_type(b"application/json")
    assert is_json_media_type(b"Application/JSON ; charset=utf-8")
    assert is_json_media_type(b"application/problem+json")
    for other in (b"text/plain", b"text/json", b"application/jsonx", b"multipart/form-data", b""):
        assert not is_json_media_type(other), other


async def test_a_cross_origin_cancel_without_a_body_is_403_and_cancels_nothing(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job = (await client.post("/v1/jobs", json={"function": "add"})).json()
    response = await client.post(
        f"/v1/jobs/{job['id']}/cancel", headers={"origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "cross_origin_refused"
    assert (await client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "queued"


async def test_a_request_from_the_apis_own_origin_is_served(
    client: httpx.AsyncClient, register: Register
) -> None:
    # What the Swagger page served by the API itself sends.
    await register("add")
    response = await client.post(
        "/v1/jobs", json={"function": "add"}, headers={"origin": "http://tether.test"}
    )
    assert response.status_code == 201


async def test_reads_from_a_foreign_origin_get_no_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/jobs", headers={"origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_cors_is_off_by_default_so_preflights_get_no_allow_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v1/jobs",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture
async def cors_app(redis_url: str, keys: Keys) -> AsyncIterator[Litestar]:
    settings = ApiSettings(
        redis_url=redis_url, prefix=keys.prefix, cors_origins=("https://app.example",)
    )
    async with running(create_app(settings)) as app:
        yield app


async def test_an_allowed_origin_gets_its_preflight_answered_without_credentials(
    cors_app: Litestar,
    test_keys: TestKeys,
) -> None:
    async with client_for(cors_app, test_keys.admin) as client:
        response = await client.options(
            "/v1/jobs",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-credentials" not in response.headers


async def test_an_allowed_origin_may_submit_and_another_may_not(
    cors_app: Litestar, test_keys: TestKeys
) -> None:
    async with client_for(cors_app, test_keys.admin) as client:
        beat = await client.post("/v1/machines/m1/heartbeat", json={"functions": [{"name": "f"}]})
        assert beat.status_code == 200
        ok = await client.post(
            "/v1/jobs", json={"function": "f"}, headers={"origin": "https://app.example"}
        )
        refused = await client.post(
            "/v1/jobs", json={"function": "f"}, headers={"origin": "https://other.example"}
        )
    assert ok.status_code == 201
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "cross_origin_refused"


def test_cors_origins_are_read_from_the_environment_and_checked() -> None:
    env = {"TETHER_CORS_ORIGINS": "https://a.example, http://localhost:3000/"}
    assert ApiSettings.from_env(env).cors_origins == ("https://a.example", "http://localhost:3000")
    assert ApiSettings.from_env({}).cors_origins == ()
    with pytest.raises(ValueError, match="TETHER_CORS_ORIGINS"):
        ApiSettings.from_env({"TETHER_CORS_ORIGINS": "https://a.example/path"})


async def test_no_response_sets_a_cookie(client: httpx.AsyncClient, register: Register) -> None:
    await register("add")
    responses = [
        await client.post("/v1/jobs", json={"function": "add"}),
        await client.get("/v1/jobs"),
        await client.get("/healthz"),
        await client.get("/schema/openapi.json"),
        await client.post("/v1/jobs", content=b"x", headers={"content-type": "text/plain"}),
    ]
    for response in responses:
        assert "set-cookie" not in response.headers, response.request.url


async def test_every_post_route_refuses_a_text_plain_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    posts = [path for path, operations in spec["paths"].items() if "post" in operations]
    assert len(posts) >= 15
    for template in posts:
        path = re.sub(r"\{[^}]+\}", "x1", template)
        response = await client.post(
            path, content=b"{}", headers={"content-type": "text/plain;charset=UTF-8"}
        )
        assert response.status_code == 415, (template, response.text)
        assert error_of(response)["code"] == "unsupported_media_type"
