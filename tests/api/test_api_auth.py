"""Identities and roles: every route needs the permission the one table gives it, keys are
checked before anything else, and machine ids belong to the key that first used them.

Each attack from issue 9 that these close is a test named after it."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import Register, client_for, error_of, running
from auth_helpers import TestKeys
from litestar import Litestar
from redis.asyncio import Redis

from tether.api.access import ROLE_PERMISSIONS, ROUTE_ACCESS, Permission, roles_table
from tether.api.app import create_app
from tether.api.auth import KEY_CACHE_TTL
from tether.api.settings import ApiSettings
from tether.protocol import ROLES
from tether.queue.apikeys import KeyStore, digest_of
from tether.queue.keys import Keys

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def openapi_routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation in the app's OpenAPI document."""
    schema = app.openapi_schema.to_schema()
    return [
        (method.upper(), path, op["operationId"])
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def concrete(path: str, role: str) -> str:
    """A path template with its parameters filled in (a machine id of the role's own)."""
    values = {
        "machine_id": f"m-{role}",
        "job_id": "j1",
        "run_id": "r1",
        "key": "k",
        "name": "n",
        "function": "fn",
        "webhook_id": "wh_1",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def call(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    if method == "GET":
        return await client.get(path)
    if method == "DELETE":
        return await client.delete(path)
    if method == "PUT":
        return await client.put(path, json={})
    return await client.post(path, json={})


# -- the table ---------------------------------------------------------------------------


def test_every_route_of_the_app_is_in_the_access_table(app: Litestar) -> None:
    # Every handler, those left out of the OpenAPI document (the dashboard's) included.
    ops = {
        handler.operation_id
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if isinstance(handler.operation_id, str)
    }
    documented = {op for _, _, op in openapi_routes(app)}

    assert documented <= ops
    assert ops == set(ROUTE_ACCESS), "ROUTE_ACCESS must name every route, and only those"


def test_docs_security_md_holds_the_roles_table_of_the_code(app: Litestar) -> None:
    assert roles_table(openapi_routes(app)) in DOCS.read_text(), (
        "regenerate the table in docs/security.md: "
        "python -c 'from tether.api.access import print_roles_table; print_roles_table()'"
    )


def test_every_role_holds_only_known_permissions() -> None:
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    assert ROLE_PERMISSIONS["admin"] == frozenset(Permission)
    assert Permission.MACHINE not in ROLE_PERMISSIONS["app"] | ROLE_PERMISSIONS["viewer"]


@pytest.mark.parametrize("role", ROLES)
async def test_a_key_of_each_role_against_every_route(
    app: Litestar, test_keys: TestKeys, role: str
) -> None:
    allowed = ROLE_PERMISSIONS[role]
    async with client_for(app, getattr(test_keys, role)) as client:
        for method, path, op in openapi_routes(app):
            if op == "streamEvents" and ROUTE_ACCESS[op] in allowed:
                # Let in, the stream never ends under the in-process ASGI transport:
                # tests/events/test_event_stream.py checks its keys over real HTTP.
                continue
            response = await call(client, method, concrete(path, role))
            if ROUTE_ACCESS[op] in allowed:
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert error_of(response)["code"] == "forbidden"


# -- who is calling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer tk_not-a-key-anyone-made", "Basic dXNlcjpwYXNz", "Bearer", "tk_no_scheme"],
    ids=["no key", "wrong key", "basic auth", "empty bearer", "no scheme"],
)
async def test_every_route_but_healthz_is_401_without_a_valid_key(
    app: Litestar, header: str | None
) -> None:
    headers = {"authorization": header} if header else {}
    async with client_for(app) as client:
        client.headers.update(headers)
        for method, path, op in openapi_routes(app):
            response = await call(client, method, concrete(path, "x"))
            if ROUTE_ACCESS[op] is Permission.PUBLIC:
                assert response.status_code == 200
                continue
            assert response.status_code == 401, (method, path, response.text)
            assert error_of(response)["code"] == "unauthorized"


async def test_a_401_names_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    client.headers.pop("authorization")

    response = await client.get("/v1/jobs")

    assert response.headers["www-authenticate"] == 'Bearer realm="tether"'


async def test_cancel_any_run_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    client.headers.pop("authorization")

    response = await client.post("/v1/runs/r1/cancel")

    assert response.status_code == 401


async def test_metrics_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    client.headers.pop("authorization")

    assert (await client.get("/metrics")).status_code == 401


async def test_a_revoked_key_is_401_within_the_cache_bound(
    app: Litestar, client: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    store = KeyStore(redis, keys)
    key, _ = await store.create("short-lived", "viewer")
    async with client_for(app, key) as viewer:
        assert (await viewer.get("/v1/jobs")).status_code == 200
        await store.revoke("short-lived")
        loop = asyncio.get_running_loop()
        revoked_at = loop.time()
        while (response := await viewer.get("/v1/jobs")).status_code == 200:
            await asyncio.sleep(0.05)
        refused_after = loop.time() - revoked_at

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert refused_after <= KEY_CACHE_TTL + 0.5


async def test_redis_holds_only_the_sha256_of_a_key(
    client: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    key, _ = await KeyStore(redis, keys).create("hashed", "viewer")

    dumped = []
    async for name in redis.scan_iter(f"*{keys.prefix}*"):
        if await redis.type(name) == "hash":
            dumped.append(f"{name} {await redis.hgetall(name)}")
    everything = "\n".join(dumped)

    assert key not in everything
    assert digest_of(key) in everything
    assert key.startswith("tk_") and len(key) >= 3 + 43  # 256 random bits, base64


async def test_last_used_is_written_once_a_minute_not_once_a_request(
    app: Litestar, redis: Redis, keys: Keys
) -> None:
    store = KeyStore(redis, keys)
    key, _ = await store.create("busy", "viewer")
    async with client_for(app, key) as viewer:
        await viewer.get("/v1/jobs")
        first = (await store.lookup(key)).last_used_ms  # type: ignore[union-attr]
        writes_before = (await redis.info("stats"))["total_commands_processed"]
        for _ in range(50):
            await viewer.get("/v1/machines")
        second = (await store.lookup(key)).last_used_ms  # type: ignore[union-attr]

    assert first is not None and second == first
    # 50 requests of a cached key: their own reads only, no key lookups or writes.
    assert (await redis.info("stats"))["total_commands_processed"] - writes_before < 50 * 3


# -- approvals and signals name their decider ----------------------------------------------


@pytest.fixture
def api_runs(app: Litestar) -> Any:
    """Start a run of workflow ``flow`` in the default namespace; returns its id."""

    async def start() -> str:
        started = await app.state.services.runs.start("flow", 1)
        return str(started.id)

    return start


async def test_an_approval_records_the_key_name_as_the_decider(
    app: Litestar, test_keys: TestKeys, api_runs: Any
) -> None:
    run_id = await api_runs()
    async with client_for(app, test_keys.approver) as approver:
        response = await approver.post(
            f"/v1/runs/{run_id}/approvals/ship", json={"approved": True, "comment": "ok"}
        )
    assert response.status_code == 200, response.text

    decision = (await app.state.services.runs.approvals(run_id))["ship"]
    assert decision["by"] == "test-approver"
    assert decision["comment"] == "ok"


async def test_an_approval_naming_its_own_decider_is_refused(
    app: Litestar, test_keys: TestKeys, api_runs: Any
) -> None:
    run_id = await api_runs()
    async with client_for(app, test_keys.approver) as approver:
        response = await approver.post(
            f"/v1/runs/{run_id}/approvals/ship", json={"approved": True, "by": "ceo@corp"}
        )

    assert response.status_code == 422
    assert "by" in str(error_of(response)["details"])
    assert await app.state.services.runs.approvals(run_id) == {}


async def test_a_signal_records_the_key_name_of_its_sender(
    app: Litestar, test_keys: TestKeys, api_runs: Any
) -> None:
    run_id = await api_runs()
    async with client_for(app, test_keys.approver) as approver:
        response = await approver.post(f"/v1/runs/{run_id}/signals/go", json={"payload": 1})
    assert response.status_code == 200, response.text

    events = await app.state.services.runs.timeline(run_id, 100)
    received = [e for e in events if e["event"] == "signal_received"]
    assert received and received[-1]["by"] == "test-approver"


async def test_an_app_key_cannot_approve(app: Litestar, test_keys: TestKeys, api_runs: Any) -> None:
    run_id = await api_runs()
    async with client_for(app, test_keys.app) as application:
        response = await application.post(
            f"/v1/runs/{run_id}/approvals/ship", json={"approved": True}
        )

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


# -- machines bound to keys --------------------------------------------------------------


@pytest.fixture
async def other_machine_key(redis: Redis, keys: Keys) -> str:
    key, _ = await KeyStore(redis, keys).create("other-machine", "machine")
    return key


@pytest.mark.parametrize("attacker", ["other machine key", "admin key"])
@pytest.mark.parametrize("action", ["heartbeat", "poll", "results"])
async def test_acting_as_another_keys_machine_is_403(
    app: Litestar, test_keys: TestKeys, other_machine_key: str, action: str, attacker: str
) -> None:
    body = {
        "heartbeat": {"functions": [{"name": "f"}]},
        "poll": {"functions": ["f"], "wait": 0},
        "results": {"results": [{"id": "j1", "token": "1", "status": "released"}]},
    }[action]
    async with client_for(app, test_keys.machine) as owner:
        first = await owner.post("/v1/machines/victim/heartbeat", json={"functions": []})
        assert first.status_code == 200, first.text
    key = other_machine_key if attacker == "other machine key" else test_keys.admin
    async with client_for(app, key) as impostor:
        response = await impostor.post(f"/v1/machines/victim/{action}", json=body)

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "forbidden" and error["details"] == {"machine_id": "victim"}


async def test_heartbeating_as_a_killed_machine_from_another_key_is_403(
    app: Litestar, test_keys: TestKeys, other_machine_key: str, register: Register
) -> None:
    # The admin client's machine "m1" holds a job; another key tries to keep it alive.
    await register("f", machine="m1")
    async with client_for(app, other_machine_key) as attacker:
        response = await attacker.post("/v1/machines/m1/heartbeat", json={"held": []})

    assert response.status_code == 403


async def test_a_machine_id_stays_with_its_key_across_api_restarts(
    settings: ApiSettings, test_keys: TestKeys, other_machine_key: str
) -> None:
    async with (
        running(create_app(settings)) as first,
        client_for(first, test_keys.machine) as owner,
    ):
        ok = await owner.post("/v1/machines/kept/heartbeat", json={"functions": []})
        assert ok.status_code == 200
    async with (
        running(create_app(settings)) as second,
        client_for(second, other_machine_key) as attacker,
    ):
        response = await attacker.post("/v1/machines/kept/poll", json={"functions": ["f"]})

    assert response.status_code == 403


async def test_a_machine_key_limited_to_billing_cannot_register_other_functions(
    app: Litestar, redis: Redis, keys: Keys
) -> None:
    key, _ = await KeyStore(redis, keys).create(
        "billing-worker", "machine", functions=["billing.*"]
    )
    async with client_for(app, key) as billing:
        allowed = await billing.post(
            "/v1/machines/b1/heartbeat", json={"functions": [{"name": "billing.charge"}]}
        )
        refused = await billing.post(
            "/v1/machines/b1/heartbeat",
            json={"functions": [{"name": "billing.refund"}, {"name": "email.send"}]},
        )
        poll = await billing.post(
            "/v1/machines/b1/poll", json={"functions": ["email.send"], "wait": 0}
        )

    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 403
    assert error_of(refused)["details"]["functions"] == ["email.send"]
    assert poll.status_code == 403
    functions = {f["name"] for f in (await billing_functions(app))}
    assert "email.send" not in functions


async def billing_functions(app: Litestar) -> list[Any]:
    return [{"name": f.name} for f in await app.state.services.registry.all()]


# -- keys over the API -------------------------------------------------------------------


async def test_an_admin_makes_a_key_over_the_api_that_works_at_once_and_is_shown_once(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    made = await client.post("/v1/keys", json={"name": "ci", "role": "viewer"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    async with client_for(app, key) as viewer:
        assert (await viewer.get("/v1/jobs")).status_code == 200
        assert (await viewer.post("/v1/jobs", json={"function": "f"})).status_code == 403

    listed = (await client.get("/v1/keys")).json()["keys"]
    assert {"name": "ci", "role": "viewer", "namespace": "default"}.items() <= next(
        k for k in listed if k["name"] == "ci"
    ).items()
    assert key not in str(listed)
    revoked = await client.post("/v1/keys/ci/revoke")
    assert revoked.status_code == 200 and revoked.json()["name"] == "ci"


async def test_a_key_name_is_unique(client: httpx.AsyncClient) -> None:
    await client.post("/v1/keys", json={"name": "dup", "role": "viewer"})
    again = await client.post("/v1/keys", json={"name": "dup", "role": "admin"})

    assert again.status_code == 409


async def test_an_admin_of_one_namespace_cannot_make_keys_for_another(
    app: Litestar, redis: Redis, keys: Keys
) -> None:
    key, _ = await KeyStore(redis, keys).create("acme-root", "admin", "acme")
    async with client_for(app, key) as acme:
        other = await acme.post(
            "/v1/keys", json={"name": "sneaky", "role": "admin", "namespace": "default"}
        )
        own = await acme.post(
            "/v1/keys", json={"name": "acme-ci", "role": "viewer", "namespace": "acme"}
        )
        listed = {k["name"] for k in (await acme.get("/v1/keys")).json()["keys"]}
        revoke_other = await acme.post("/v1/keys/test-admin/revoke")

    assert other.status_code == 403
    assert revoke_other.status_code == 404
    assert own.status_code == 201
    assert listed == {"acme-root", "acme-ci"}


# -- running without keys ------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_no_auth_is_logged_as_unsafe_at_every_start(settings: ApiSettings) -> None:
    import dataclasses

    open_settings = dataclasses.replace(settings, auth=False)
    records = Records()
    logger = logging.getLogger("tether.api")
    logger.addHandler(records)
    try:
        for _ in range(2):
            async with running(create_app(open_settings)) as app, client_for(app) as anyone:
                assert (await anyone.get("/v1/jobs")).status_code == 200
    finally:
        logger.removeHandler(records)

    assert len([m for m in records.messages if "UNSAFE" in m]) == 2


async def test_a_machine_key_allow_list_names_workflows_by_their_name(
    app: Litestar, redis: Redis, keys: Keys
) -> None:
    key, _ = await KeyStore(redis, keys).create("billing-flows", "machine", functions=["billing.*"])
    async with client_for(app, key) as billing:
        allowed = await billing.post(
            "/v1/machines/b2/heartbeat",
            json={"functions": [{"name": "wf:billing.close@3", "kind": "workflow"}]},
        )
        refused = await billing.post(
            "/v1/machines/b2/poll", json={"functions": ["wf:payroll@1"], "wait": 0}
        )

    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 403
