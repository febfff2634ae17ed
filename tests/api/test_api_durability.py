"""``TETHER_DURABILITY=replicated`` over HTTP: a job the replicas did not confirm in time
is 503 ``not_replicated``, and its retry with the same idempotency key, once they do,
answers the job that was made (no second job)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from api_helpers import admin_key, client_for, error_of, running

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.redis_server import RedisServer


def test_an_unknown_durability_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="TETHER_DURABILITY"):
        ApiSettings.from_env({"TETHER_DURABILITY": "sync"})


def test_durability_is_read_from_the_environment() -> None:
    settings = ApiSettings.from_env(
        {
            "TETHER_DURABILITY": "replicated",
            "TETHER_DURABILITY_REPLICAS": "2",
            "TETHER_DURABILITY_TIMEOUT_MS": "250",
        }
    )
    durability = settings.redis_durability()
    assert durability is not None
    assert (durability.replicas, durability.timeout_ms, durability.aof) == (2, 250, False)
    assert ApiSettings().redis_durability() is None  # async by default


@pytest.mark.single_node(reason="starts a primary and then a replica of its own")
async def test_a_job_no_replica_confirmed_is_503_and_its_retry_once_one_does_is_the_same_job(
    tmp_path: Path,
) -> None:
    primary = RedisServer(tmp_path / "primary", appendonly=False).start()
    replica: RedisServer | None = None
    plain = ApiSettings(redis_url=primary.url, prefix="durable")
    settings = dataclasses.replace(plain, durability="replicated", durability_timeout_ms=100)
    body = {"function": "f", "idempotency_key": "order-9"}
    try:
        key = await admin_key(primary.url, "durable")
        async with running(create_app(plain)) as app, client_for(app, key) as client:
            # (A heartbeat is a transition too: under this durability it would wait.)
            await client.post("/v1/machines/m1/heartbeat", json={"functions": [{"name": "f"}]})
        async with running(create_app(settings)) as app, client_for(app, key) as client:
            refused = await client.post("/v1/jobs", json=body)
            replica = RedisServer(
                tmp_path / "replica",
                appendonly=False,
                extra_args=["--replicaof", "127.0.0.1", str(primary.port)],
            ).start()
            await app.state.redis.execute_command("WAIT", 1, 10_000)  # the replica synced
            retried = await client.post("/v1/jobs", json=body)
            listed = (await client.get("/v1/jobs")).json()["jobs"]
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()
    assert refused.status_code == 503
    assert error_of(refused)["code"] == "not_replicated"
    assert retried.status_code == 200  # the job the first call made, not a new one
    assert [j["id"] for j in listed] == [retried.json()["id"]]
