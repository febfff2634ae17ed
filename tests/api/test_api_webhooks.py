"""/v1/webhooks: admins create, list, read and delete a namespace's webhooks and see
their deliveries; nobody else may, and no namespace sees another's."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import client_for, error_of, running
from auth_helpers import TestKeys, create_keys
from litestar import Litestar
from redis.asyncio import Redis
from webhook_receiver import Receiver

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.orchestrator.loop import Orchestrator
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.runs import RunEngine

HOOK = {"url": "https://chat.example.com/tether", "events": ["run.failed"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def _create(client: httpx.AsyncClient, body: dict[str, object] = HOOK) -> dict[str, object]:
    response = await client.post("/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_creating_a_webhook_answers_201_with_its_secret_shown_once(
    client: httpx.AsyncClient,
) -> None:
    created = await _create(client)

    assert str(created["secret"]).startswith("whsec_")
    assert created["events"] == ["run.failed"] and created["created_by"] == "test-admin"
    listed = (await client.get("/v1/webhooks")).json()["webhooks"]
    read = (await client.get(f"/v1/webhooks/{created['id']}")).json()
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0] and "secret" not in read


async def test_a_given_secret_is_kept(client: httpx.AsyncClient) -> None:
    created = await _create(client, {**HOOK, "secret": "a-secret-of-ours-1234"})

    assert created["secret"] == "a-secret-of-ours-1234"


async def test_a_deleted_webhook_is_gone(client: httpx.AsyncClient) -> None:
    created = await _create(client)

    response = await client.delete(f"/v1/webhooks/{created['id']}")

    assert response.status_code == 200 and response.json()["deleted"] is True
    assert (await client.get(f"/v1/webhooks/{created['id']}")).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{created['id']}")).status_code == 404


@pytest.mark.parametrize("role", ["app", "approver", "viewer", "machine"])
async def test_only_admins_may_manage_webhooks(
    app: Litestar, test_keys: TestKeys, client: httpx.AsyncClient, role: str
) -> None:
    created = await _create(client)
    async with client_for(app, getattr(test_keys, role)) as other:
        answers = [
            await other.post("/v1/webhooks", json=HOOK),
            await other.get("/v1/webhooks"),
            await other.get(f"/v1/webhooks/{created['id']}"),
            await other.get(f"/v1/webhooks/{created['id']}/deliveries"),
            await other.delete(f"/v1/webhooks/{created['id']}"),
        ]

    assert [a.status_code for a in answers] == [403] * 5


async def test_a_webhook_of_another_namespace_is_invisible(
    app: Litestar, client: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    created = await _create(client)
    acme = await create_keys(redis, keys.prefix, "acme")
    async with client_for(app, acme.admin) as other:
        listed = (await other.get("/v1/webhooks")).json()["webhooks"]
        read = await other.get(f"/v1/webhooks/{created['id']}")
        deleted = await other.delete(f"/v1/webhooks/{created['id']}")

    assert listed == [] and read.status_code == 404 and deleted.status_code == 404
    assert (await client.get(f"/v1/webhooks/{created['id']}")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "gopher://127.0.0.1:6379/_FLUSHALL"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://u:p@example.com/"}, "url"),
        ({"url": "https://example.com/" + "a" * 3000}, "url"),
        ({"url": "https://example.com/", "events": ["run.exploded"]}, "events"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "secret": "short"}, "secret"),
        ({"url": "https://example.com/", "extra": 1}, "extra"),
        ({"url": 5}, "url"),
    ],
)
async def test_a_bad_webhook_is_refused_naming_its_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/v1/webhooks", json=body)

    assert response.status_code in (400, 422), response.text
    assert field in response.text
    assert (await client.get("/v1/webhooks")).json()["webhooks"] == []


async def test_with_an_allow_list_a_host_outside_it_is_refused(
    settings: ApiSettings, test_keys: TestKeys
) -> None:

    allowing = dataclasses.replace(settings, webhook_allow_hosts=("hooks.slack.com",))
    application = create_app(allowing)
    async with running(application), client_for(application, test_keys.admin) as c:
        refused = await c.post("/v1/webhooks", json={"url": "http://169.254.169.254/latest"})
        accepted = await c.post("/v1/webhooks", json={"url": "https://hooks.slack.com/x"})

    assert refused.status_code == 422 and error_of(refused)["details"]["field"] == "url"
    assert accepted.status_code == 201


async def test_deliveries_show_attempts_status_codes_and_next_try(
    client: httpx.AsyncClient, api_engine: QueueEngine, receiver: Receiver
) -> None:
    created = await _create(client, {"url": receiver.url, "events": ["run.cancelled"]})
    receiver.answers = [503]
    runs = RunEngine(api_engine.redis, api_engine.config)
    await runs.start("w", None, run_id="r1", version=1)
    await runs.cancel("r1")
    orch = Orchestrator(api_engine)
    await orch.tick()
    await orch.webhooks.drain()

    [delivery] = (await client.get(f"/v1/webhooks/{created['id']}/deliveries")).json()["deliveries"]

    assert delivery["run"] == "r1" and delivery["event"] == "run.cancelled"
    assert delivery["state"] == "retrying" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 503 and delivery["next_try_at"] is not None


async def test_deliveries_of_an_unknown_webhook_are_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/webhooks/wh_nope/deliveries")

    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
