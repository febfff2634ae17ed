"""Bounded shared state and strict input: every limit of ``tether.limits`` answered with a
clear 4xx in the error shape, before anything is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import Register, client_for, error_of, running
from auth_helpers import TestKeys
from litestar import Litestar
from redis.asyncio import Redis

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.limits import (
    MAX_FUNCTIONS_PER_MACHINE,
    MAX_FUNCTIONS_PER_POLL,
    MAX_ID_LENGTH,
    MAX_INPUT_SCHEMA_BYTES,
    MAX_META_BYTES,
    MAX_STICKY_POSITIONS,
)
from tether.queue.keys import Keys

MiB = 1024 * 1024


async def registry_size(redis: Redis, keys: Keys) -> int:
    return int(await redis.hlen(keys.partition(0).functions))  # type: ignore[misc]


def heartbeat_of(names: list[str], **extra: Any) -> dict[str, Any]:
    return {"functions": [{"name": n} for n in names], **extra}


# -- functions per machine, registry size ----------------------------------------------


async def test_heartbeats_naming_10000_functions_are_refused_and_register_nothing(
    client: httpx.AsyncClient, register: Register, redis: Redis, keys: Keys
) -> None:
    await register("add")
    for machine in ("m1", "m2", "m3"):
        names = [f"{machine}.fn{i}" for i in range(10_000)]
        response = await client.post(f"/v1/machines/{machine}/heartbeat", json=heartbeat_of(names))
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["details"]["fields"][0]["field"] == "functions"
        assert str(MAX_FUNCTIONS_PER_MACHINE) in error["message"]
    assert await registry_size(redis, keys) == 1
    functions = (await client.get("/v1/functions")).json()["functions"]
    assert [f["name"] for f in functions] == ["add"]


async def test_a_heartbeat_of_as_many_functions_as_allowed_registers_them(
    client: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    names = [f"fn{i}" for i in range(MAX_FUNCTIONS_PER_MACHINE)]
    response = await client.post("/v1/machines/m1/heartbeat", json=heartbeat_of(names))
    assert response.status_code == 200, response.text
    assert await registry_size(redis, keys) == MAX_FUNCTIONS_PER_MACHINE


@pytest.fixture
async def small_registry_app(redis_url: str, keys: Keys) -> AsyncIterator[Litestar]:
    settings = ApiSettings(redis_url=redis_url, prefix=keys.prefix, max_registered_functions=5)
    async with running(create_app(settings)) as app:
        yield app


async def test_a_heartbeat_past_the_registry_limit_is_409_and_registers_none_of_its_names(
    small_registry_app: Litestar, test_keys: TestKeys, redis: Redis, keys: Keys
) -> None:
    async with client_for(small_registry_app, test_keys.admin) as client:
        first = await client.post("/v1/machines/m1/heartbeat", json=heartbeat_of(["a", "b", "c"]))
        assert first.status_code == 200
        over = await client.post("/v1/machines/m2/heartbeat", json=heartbeat_of(["d", "e", "f"]))
        assert over.status_code == 409
        error = error_of(over)
        assert error["code"] == "registry_full"
        assert error["details"] == {"limit": 5, "registered": 3, "new": 3}
        assert await registry_size(redis, keys) == 3
        fits = await client.post("/v1/machines/m2/heartbeat", json=heartbeat_of(["d", "e"]))
        assert fits.status_code == 200
    assert await registry_size(redis, keys) == 5


async def test_a_full_registry_still_takes_names_it_holds(
    small_registry_app: Litestar, test_keys: TestKeys, redis: Redis, keys: Keys
) -> None:
    names = ["a", "b", "c", "d", "e"]
    async with client_for(small_registry_app, test_keys.admin) as client:
        assert (
            await client.post("/v1/machines/m1/heartbeat", json=heartbeat_of(names))
        ).status_code == 200
        # Another machine serving the same functions (a second replica of the worker).
        again = await client.post("/v1/machines/m2/heartbeat", json=heartbeat_of(names))
        assert again.status_code == 200
    assert await registry_size(redis, keys) == 5


async def test_a_machine_refused_for_a_full_registry_keeps_its_leases(
    small_registry_app: Litestar,
    test_keys: TestKeys,
) -> None:
    async with client_for(small_registry_app, test_keys.admin) as client:
        await client.post("/v1/machines/m1/heartbeat", json=heartbeat_of(["a"]))
        job = (await client.post("/v1/jobs", json={"function": "a"})).json()
        polled = await client.post("/v1/machines/m1/poll", json={"functions": ["a"], "wait": 0})
        assert [j["id"] for j in polled.json()["jobs"]] == [job["id"]]
        new_names = ["a", *(f"n{i}" for i in range(10))]
        refused = await client.post(
            "/v1/machines/m1/heartbeat", json=heartbeat_of(new_names, held=[job["id"]])
        )
        assert refused.status_code == 409
        machines = (await client.get("/v1/machines")).json()["machines"]
    assert [(m["id"], m["jobs"]) for m in machines] == [("m1", 1)]


async def test_racing_heartbeats_never_take_the_registry_past_its_limit(
    small_registry_app: Litestar, test_keys: TestKeys, redis: Redis, keys: Keys
) -> None:
    async with client_for(small_registry_app, test_keys.admin) as client:
        replies = await asyncio.gather(
            *(
                client.post(f"/v1/machines/m{i}/heartbeat", json=heartbeat_of([f"m{i}a", f"m{i}b"]))
                for i in range(20)
            )
        )
    assert sorted(r.status_code for r in replies) == [200, 200] + [409] * 18
    assert await registry_size(redis, keys) == 4


# -- machine meta, input schemas -------------------------------------------------------


async def test_15_mib_of_machine_meta_is_refused_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    body = {"functions": [{"name": "add"}], "meta": {"junk": "x" * (15 * MiB)}}
    response = await client.post("/v1/machines/m1/heartbeat", json=body)
    assert response.status_code in (413, 422)
    error = error_of(response)
    assert error["details"]["fields"][0]["field"] == "meta"
    assert (await client.get("/v1/machines")).json()["machines"] == []


async def test_meta_just_over_its_limit_is_422_and_within_it_is_kept(
    client: httpx.AsyncClient,
) -> None:
    over = {"meta": {"junk": "x" * MAX_META_BYTES}}
    response = await client.post("/v1/machines/m1/heartbeat", json=over)
    assert response.status_code == 422
    assert str(MAX_META_BYTES) in error_of(response)["message"]
    within = {"meta": {"hostname": "box-1", "notes": "y" * (MAX_META_BYTES // 2)}}
    assert (await client.post("/v1/machines/m1/heartbeat", json=within)).status_code == 200
    machines = (await client.get("/v1/machines")).json()["machines"]
    assert machines[0]["meta"]["hostname"] == "box-1"


async def test_an_input_schema_over_its_limit_is_422(client: httpx.AsyncClient) -> None:
    schema = {"type": "object", "description": "d" * MAX_INPUT_SCHEMA_BYTES}
    body = {"functions": [{"name": "add", "input_schema": schema}]}
    response = await client.post("/v1/machines/m1/heartbeat", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "functions.0.input_schema"


# -- polls -----------------------------------------------------------------------------


async def test_a_poll_naming_10000_functions_is_refused(client: httpx.AsyncClient) -> None:
    names = [f"fn{i}" for i in range(10_000)]
    response = await client.post("/v1/machines/m1/poll", json={"functions": names, "wait": 0})
    assert response.status_code == 422
    error = error_of(response)
    assert error["details"]["fields"][0]["field"] == "functions"
    assert str(MAX_FUNCTIONS_PER_POLL) in error["message"]


async def test_a_poll_naming_a_function_with_bad_characters_is_422(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/machines/m1/poll", json={"functions": ["ok", "not ok"], "wait": 0}
    )
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "functions.1"


# -- timeouts and loose numbers --------------------------------------------------------


async def test_a_job_timeout_below_a_millisecond_is_422_not_no_timeout(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    response = await client.post("/v1/jobs", json={"function": "add", "timeout": 0.0004})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "timeout"
    assert (await client.get("/v1/jobs")).json()["jobs"] == []


async def test_a_function_timeout_below_a_millisecond_is_422(client: httpx.AsyncClient) -> None:
    body = {"functions": [{"name": "add", "timeout": 0.0004}]}
    response = await client.post("/v1/machines/m1/heartbeat", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "functions.0.timeout"


async def test_a_timeout_of_one_millisecond_is_kept_as_one_millisecond(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    created = await client.post("/v1/jobs", json={"function": "add", "timeout": 0.001})
    assert created.status_code == 201
    polled = await client.post("/v1/machines/m1/poll", json={"functions": ["add"], "wait": 0})
    assert polled.json()["jobs"][0]["timeout"] == 0.001


LOOSE_NUMBERS = [
    ("/v1/jobs", {"function": "add", "delay": "5"}, "delay"),
    ("/v1/jobs", {"function": "add", "delay": True}, "delay"),
    ("/v1/jobs", {"function": "add", "timeout": "30"}, "timeout"),
    ("/v1/jobs", {"function": "add", "max_attempts": True}, "max_attempts"),
    ("/v1/jobs", {"function": "add", "max_attempts": 2.0}, "max_attempts"),
    ("/v1/jobs/batch", {"jobs": [{"function": "add", "delay": "1"}]}, "jobs.0.delay"),
    ("/v1/machines/m1/poll", {"functions": ["add"], "wait": False}, "wait"),
    ("/v1/machines/m1/poll", {"functions": ["add"], "max_jobs": "2"}, "max_jobs"),
    ("/v1/machines/m1/heartbeat", {"max_jobs": True}, "max_jobs"),
    (
        "/v1/machines/m1/results",
        {"results": [{"id": "j1", "token": "1", "status": "failed", "retryable": 0}]},
        "results.0.retryable",
    ),
    ("/v1/runs", {"workflow": "ship", "version": "1"}, "version"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), LOOSE_NUMBERS, ids=[f"{p}:{f}" for p, _, f in LOOSE_NUMBERS]
)
async def test_a_loose_number_or_flag_is_422_naming_it(
    client: httpx.AsyncClient, register: Register, path: str, body: dict[str, Any], field: str
) -> None:
    await register("add")
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert error["details"]["fields"][0]["field"] == field
    assert (await client.get("/v1/jobs")).json()["jobs"] == []


async def test_the_approval_flag_must_be_a_boolean(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    started = await app.state.services.runs.start("ship", None, version=1)
    response = await client.post(f"/v1/runs/{started.id}/approvals/go", json={"approved": 1})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "approved"


async def test_a_workflow_version_past_its_limit_is_422_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/runs", json={"workflow": "ship", "version": 10**20})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "version"


async def test_a_log_line_that_json_cannot_hold_is_422_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    # Found by the schemathesis run: an integer past 64 bits in a log line.
    body = {"job": "j1", "token": "1", "logs": [{"n": 2**70}]}
    response = await client.post("/v1/machines/m1/runs/r1/complete", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "logs"


# -- ids in paths ----------------------------------------------------------------------

LONG = "x" * (MAX_ID_LENGTH + 1)
PATH_IDS = [
    ("POST", "/v1/machines/{}/heartbeat", {}),
    ("POST", "/v1/machines/{}/poll", {"functions": ["add"], "wait": 0}),
    ("GET", "/v1/jobs/{}", None),
    ("POST", "/v1/jobs/{}/cancel", None),
    ("GET", "/v1/runs/{}", None),
    ("GET", "/v1/runs/{}/timeline", None),
    ("POST", "/v1/runs/{}/cancel", None),
    ("POST", "/v1/runs/r1/approvals/{}", {"approved": True}),
    ("POST", "/v1/runs/r1/signals/{}", {}),
    ("POST", "/v1/machines/{}/runs/r1/complete", {"job": "j", "token": "1"}),
    ("POST", "/v1/machines/m1/runs/{}/complete", {"job": "j", "token": "1"}),
    ("GET", "/v1/schedules/{}", None),
    ("POST", "/v1/schedules/{}/pause", None),
    ("POST", "/v1/schedules/{}/resume", None),
    ("POST", "/v1/schedules/{}/trigger", None),
    ("DELETE", "/v1/schedules/{}", None),
]


@pytest.mark.parametrize("bad", [LONG, "a b", "caf%C3%A9", "a'b", "a%00b"])
@pytest.mark.parametrize(
    ("method", "template", "body"), PATH_IDS, ids=[f"{m} {t}" for m, t, _ in PATH_IDS]
)
async def test_a_path_id_too_long_or_with_bad_characters_is_422_naming_it(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    body: dict[str, Any] | None,
    bad: str,
) -> None:
    response = await client.request(method, template.format(bad), json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert error["details"]["field"] in ("machine_id", "job_id", "run_id", "key", "name")


async def test_an_encoded_slash_in_a_path_id_finds_no_route(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/jobs/a%2Fb/cancel")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


async def test_every_path_parameter_has_its_pattern_and_length_in_openapi(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    seen = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] != "path":
                    continue
                seen += 1
                schema = param["schema"]
                where = f"{method.upper()} {path} {param['name']}"
                assert schema.get("pattern") == r"^[A-Za-z0-9_.:@\-]+$", where
                assert schema.get("maxLength") == MAX_ID_LENGTH, where
                assert schema.get("minLength") == 1, where
    assert seen >= 20


async def test_timeouts_show_their_minimum_in_openapi(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    for model in ("JobCreate", "FunctionSpec"):
        assert schemas[model]["properties"]["timeout"]["minimum"] == 0.001, model


async def test_a_child_job_timeout_of_zero_ms_is_422_not_no_timeout(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "job": "j1",
        "token": "1",
        "wait": {"kind": "children", "positions": [0]},
        "children": [{"position": 0, "function": "add", "timeout_ms": 0}],
    }
    response = await client.post("/v1/machines/m1/runs/r1/suspend", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "children.0.timeout_ms"


async def test_an_unknown_field_in_a_wait_is_422(client: httpx.AsyncClient) -> None:
    body = {"job": "j1", "token": "1", "wait": {"kind": "sleep", "ms": 5, "until": "never"}}
    response = await client.post("/v1/machines/m1/runs/r1/suspend", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "wait.until"


async def test_a_begin_asking_for_more_sticky_positions_than_the_limit_is_422(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "job": "j1",
        "token": "1",
        "resume": "r1:a1",
        "positions": list(range(MAX_STICKY_POSITIONS + 1)),
    }
    response = await client.post("/v1/machines/m1/runs/r1/begin", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "positions"


async def test_a_begin_naming_a_malformed_resume_activation_is_422(
    client: httpx.AsyncClient,
) -> None:
    body = {"job": "j1", "token": "1", "resume": "no spaces allowed", "positions": [0]}
    response = await client.post("/v1/machines/m1/runs/r1/begin", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "resume"
