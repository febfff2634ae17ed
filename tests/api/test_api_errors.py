"""Every bad request gets the one error shape with the right status, never a 500."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from api_helpers import Register, admin_key, client_for, error_of, running
from litestar import Litestar

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.queue.engine import QueueEngine
from tether.redis_server import RedisServer, free_port

POLL = "/v1/machines/m1/poll"


async def post_raw(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await client.post(path, content=body, headers={"content-type": "application/json"})


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, POLL, b'{"functions": [')
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "JSON" in error["message"]


async def test_a_body_that_is_not_an_object_is_400(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, POLL, b"[1, 2]")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


async def test_a_field_of_the_wrong_type_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post(POLL, json={"functions": "add"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert error["message"].startswith("functions:")
    assert error["details"]["fields"][0]["field"] == "functions"


async def test_a_missing_field_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/jobs", json={"input": 1})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"] == [
        {"field": "function", "message": "Field required"}
    ]


async def test_an_unknown_field_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/jobs", json={"function": "add", "urgency": 9})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "urgency"


async def test_a_nested_field_error_names_its_path(client: httpx.AsyncClient) -> None:
    body = {"results": [{"id": "j1", "token": "1", "status": "exploded"}]}
    response = await client.post("/v1/machines/m1/results", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "results.0.status"


async def test_a_job_id_with_forbidden_characters_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/jobs/a%20b")
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "job_id"


async def test_an_unknown_route_is_404_in_our_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


async def test_a_wrong_method_is_405_in_our_shape(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/jobs")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


async def test_a_body_over_the_size_limit_is_413(redis_url: str, keys_prefix: str) -> None:
    app = create_app(ApiSettings(redis_url=redis_url, prefix=keys_prefix, max_body_size=2048))
    key = await admin_key(redis_url, keys_prefix)
    async with running(app), client_for(app, key) as client:
        response = await client.post("/v1/jobs", json={"function": "f", "input": "x" * 4096})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"limit": 2048}


async def test_an_input_over_the_payload_limit_is_413(redis_url: str, keys_prefix: str) -> None:
    settings = ApiSettings(redis_url=redis_url, prefix=keys_prefix, max_payload_size=1000)
    app = create_app(settings)
    key = await admin_key(redis_url, keys_prefix)
    async with app.lifespan(), client_for(app, key) as client:
        await client.post("/v1/machines/m1/heartbeat", json={"functions": [{"name": "f"}]})
        response = await client.post("/v1/jobs", json={"function": "f", "input": "x" * 2000})
    assert response.status_code == 413
    assert error_of(response)["details"]["field"] == "input"


@pytest.fixture
def keys_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def app_without_redis(keys_prefix: str) -> AsyncIterator[Litestar]:
    """The app pointed at a port nobody listens on."""
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0", prefix=keys_prefix)
    async with running(create_app(settings)) as app:
        yield app


async def test_submitting_a_job_while_redis_is_unreachable_is_503(
    app_without_redis: Litestar,
) -> None:
    # (Checking the key needs Redis too: that is what answers 503.)
    async with client_for(app_without_redis, "tk_unchecked") as client:
        response = await client.post("/v1/jobs", json={"function": "add"})
    assert response.status_code == 503
    assert error_of(response)["code"] == "redis_unavailable"


async def test_healthz_is_503_while_redis_is_unreachable(app_without_redis: Litestar) -> None:
    async with client_for(app_without_redis) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert error_of(response)["code"] == "redis_unavailable"


async def test_a_poll_while_redis_is_unreachable_is_503(app_without_redis: Litestar) -> None:
    async with client_for(app_without_redis, "tk_unchecked") as client:
        response = await client.post(POLL, json={"functions": ["add"], "wait": 1})
    assert response.status_code == 503


async def test_a_write_while_redis_is_out_of_memory_is_503(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=False).start()
    try:
        app = create_app(ApiSettings(redis_url=server.url, prefix="oom"))
        key = await admin_key(server.url, "oom")
        async with app.lifespan(), client_for(app, key) as client:
            await client.post("/v1/machines/m1/heartbeat", json={"functions": [{"name": "f"}]})
            await app.state.redis.config_set("maxmemory", 1)
            response = await client.post("/v1/jobs", json={"function": "f"})
    finally:
        server.stop()
    assert response.status_code == 503
    assert error_of(response)["code"] == "redis_out_of_memory"


async def test_an_unexpected_error_is_500_in_our_shape_and_logged(
    client: httpx.AsyncClient,
    register: Register,
    api_engine: QueueEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(job_id: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api_engine, "get_job", broken)
    with caplog.at_level(logging.ERROR, logger="tether.api"):
        response = await client.get("/v1/jobs/j1")
    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"
    assert "a bug" in caplog.text


async def test_an_empty_body_is_400(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, "/v1/jobs", b"")
    assert response.status_code == 400
    assert error_of(response)["message"] == "a JSON object body is required"


async def test_a_body_that_is_not_utf8_is_400(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, "/v1/jobs", b'{"function": "f", "input": "\xff\xfe"}')
    assert response.status_code == 400
    assert "UTF-8" in error_of(response)["message"]


async def test_json_nested_absurdly_deep_is_400(client: httpx.AsyncClient) -> None:
    body = b'{"function": "f", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await post_raw(client, "/v1/jobs", body)
    assert response.status_code == 400
    assert "nested" in error_of(response)["message"]


async def test_a_number_out_of_range_is_400(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, POLL, b'{"functions": ["f"], "wait": 1e400}')
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"
