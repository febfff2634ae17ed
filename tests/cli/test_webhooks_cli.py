"""``tether webhooks ...`` and the client's webhook methods against the real API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from api_server import ApiServer
from webhook_receiver import Receiver

from tether import AsyncClient
from tether.cli import main
from tether.cli.common import EXIT_FAILED
from tether.orchestrator.loop import Orchestrator
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine
from tether.webhooks import verify_signature


async def started(engine: QueueEngine) -> str:
    """A run of workflow w, queued (no worker needed to cancel it)."""
    await RunEngine(engine.redis, engine.config).start("w", None, run_id="r1", version=1)
    return "r1"


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def test_webhooks_create_prints_the_secret_that_signs_the_deliveries(
    api: ApiServer,
    client: AsyncClient,
    engine: QueueEngine,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ("webhooks", "--url", api.url, "create", receiver.url, "--event", "run.cancelled")
    assert await cli(*args) == 0
    out = capsys.readouterr().out.splitlines()
    secret = out[1].removeprefix("secret (shown once): ")
    run = await started(engine)
    await client.cancel_run(run)
    orch = Orchestrator(engine)

    for _ in range(100):
        await orch.tick()
        await orch.webhooks.drain()
        if receiver.received:
            break

    [request] = receiver.received
    verify_signature(secret, request.headers["tether-signature"], request.body)
    assert request.json()["run"]["id"] == run


async def test_webhooks_list_deliveries_and_delete(
    api: ApiServer,
    client: AsyncClient,
    engine: QueueEngine,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook = await client.create_webhook(receiver.url, events=["run.cancelled"])
    receiver.answers = [500]
    run = await started(engine)
    await client.cancel_run(run)
    orch = Orchestrator(engine)
    await orch.tick()
    await orch.webhooks.drain()

    assert await cli("webhooks", "--url", api.url, "list") == 0
    assert await cli("webhooks", "--url", api.url, "deliveries", hook.id) == 0
    listed, deliveries = capsys.readouterr().out.split("DELIVERY", 1)
    assert hook.id in listed and receiver.url in listed and "run.cancelled" in listed
    assert "retrying" in deliveries and "500" in deliveries and run in deliveries
    assert await cli("webhooks", "--url", api.url, "show", hook.id) == 0
    assert json.loads(capsys.readouterr().out)["id"] == hook.id
    assert await cli("webhooks", "--url", api.url, "delete", hook.id) == 0
    assert await client.list_webhooks() == []


async def test_webhooks_create_with_a_bad_url_fails_naming_it(
    api: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await cli("webhooks", "--url", api.url, "create", "file:///etc/passwd")

    assert code == EXIT_FAILED
    assert "url" in capsys.readouterr().err
