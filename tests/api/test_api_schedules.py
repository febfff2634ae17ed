"""/v1/schedules: declare, read, pause, resume, trigger and delete schedules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import Register, error_of
from litestar import Litestar

from tether.orchestrator.loop import Orchestrator
from tether.queue.engine import QueueEngine

NIGHTLY = {"name": "nightly", "function": "tidy", "cron": "0 3 * * *", "input": {"deep": True}}


async def _put(client: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> Any:
    response = await client.post("/v1/schedules", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_creating_a_schedule_answers_201_with_its_next_tick(
    client: httpx.AsyncClient,
) -> None:
    body = await _put(client, NIGHTLY)

    assert body["name"] == "nightly" and body["function"] == "tidy"
    assert body["workflow"] is None and body["paused"] is False
    assert "T03:00:00" in body["next_fire"]
    assert (body["fired"], body["missed"], body["source"]) == (0, 0, "api")


async def test_putting_the_same_schedule_again_answers_200_and_keeps_it(
    client: httpx.AsyncClient,
) -> None:
    first = await _put(client, NIGHTLY)

    again = await _put(client, NIGHTLY, status=200)

    assert again["next_fire"] == first["next_fire"]
    assert again["updated_at"] == first["updated_at"]


async def test_a_schedule_takes_the_limits_its_function_registered(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("tidy", timeout=30, max_attempts=2)

    body = await _put(client, NIGHTLY)

    assert (body["timeout"], body["max_attempts"]) == (30, 2)


async def test_listing_and_getting_schedules(client: httpx.AsyncClient) -> None:
    await _put(client, NIGHTLY)
    await _put(client, {"name": "often", "workflow": "report", "every": 60})

    listed = (await client.get("/v1/schedules")).json()["schedules"]
    got = (await client.get("/v1/schedules/often")).json()

    assert [s["name"] for s in listed] == ["nightly", "often"]
    assert (got["workflow"], got["every"], got["cron"]) == ("report", 60, None)


async def test_pause_and_resume(client: httpx.AsyncClient) -> None:
    await _put(client, NIGHTLY)

    paused = (await client.post("/v1/schedules/nightly/pause")).json()
    resumed = (await client.post("/v1/schedules/nightly/resume")).json()

    assert paused["paused"] is True and paused["next_fire"] is None
    assert resumed["paused"] is False and resumed["next_fire"] is not None


async def test_trigger_starts_the_job_now(
    client: httpx.AsyncClient, api_engine: QueueEngine
) -> None:
    await _put(client, NIGHTLY)

    response = await client.post("/v1/schedules/nightly/trigger")

    assert response.status_code == 201
    fired = response.json()
    assert fired["kind"] == "job" and fired["created"] is True
    job = (await client.get(f"/v1/jobs/{fired['id']}")).json()
    assert (job["function"], job["input"], job["status"]) == ("tidy", {"deep": True}, "queued")


async def test_trigger_with_a_key_answers_the_same_job_the_second_time(
    client: httpx.AsyncClient,
) -> None:
    await _put(client, NIGHTLY)

    first = await client.post("/v1/schedules/nightly/trigger", json={"key": "k1"})
    second = await client.post("/v1/schedules/nightly/trigger", json={"key": "k1"})

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


async def test_deleting_a_schedule_answers_200_then_404(client: httpx.AsyncClient) -> None:
    await _put(client, NIGHTLY)

    deleted = await client.delete("/v1/schedules/nightly")
    after = await client.get("/v1/schedules/nightly")

    assert deleted.status_code == 200 and deleted.json() == {"name": "nightly", "deleted": True}
    assert after.status_code == 404 and error_of(after)["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["", "/pause", "/resume", "/trigger"], ids=["get", "pause", "resume", "trigger"]
)
async def test_an_unknown_schedule_is_404(client: httpx.AsyncClient, path: str) -> None:
    method = client.get if path == "" else client.post

    response = await method(f"/v1/schedules/nope{path}")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "function": "f"}, "cron"),
        ({"name": "x", "function": "f", "cron": "* * * * *", "every": 60}, "cron"),
        ({"name": "x", "cron": "* * * * *"}, "function"),
        ({"name": "x", "function": "f", "workflow": "w", "cron": "* * * * *"}, "function"),
        ({"name": "x", "function": "f", "cron": "61 * * * *"}, "cron"),
        (
            {"name": "x", "function": "f", "cron": "* * * * *", "timezone": "Nowhere/Else"},
            "timezone",
        ),
    ],
)
async def test_a_bad_schedule_is_refused_naming_its_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/schedules", json=body)

    assert response.status_code == 422, response.text
    assert error_of(response)["details"]["field"] == field
    assert (await client.get("/v1/schedules")).json()["schedules"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a/b", "function": "f", "every": 60},
        {"name": "x", "function": "f", "every": 0.001},
        {"name": "x", "function": "f", "every": 60, "misfire": "always"},
        {"name": "x", "function": "f", "every": 60, "grace": -1},
        {"name": "x", "function": "f", "every": 60, "surprise": 1},
        {"name": "x" * 151, "function": "f", "every": 60},
    ],
    ids=["slash-in-name", "tiny-interval", "bad-policy", "negative-grace", "unknown-field", "long"],
)
async def test_a_malformed_schedule_body_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/schedules", json=body)

    assert response.status_code == 422, response.text


async def test_a_trigger_key_cannot_smuggle_characters_into_the_id(
    client: httpx.AsyncClient,
) -> None:
    await _put(client, NIGHTLY)

    response = await client.post("/v1/schedules/nightly/trigger", json={"key": "x y/../z"})

    assert response.status_code == 422


async def test_the_orchestrator_fires_a_due_schedule_seen_through_the_api(
    client: httpx.AsyncClient, app: Litestar, api_engine: QueueEngine
) -> None:
    await _put(client, {"name": "often", "function": "tidy", "every": 60})
    pk = api_engine.keys.schedules_partition()
    # Make its next tick due now rather than wait for it.
    next_fire = int(await api_engine.redis.hget(pk.schedule("often"), "next_fire"))
    await api_engine.redis.hset(pk.schedule("often"), "next_fire", next_fire - 60_000)
    await api_engine.redis.zadd(pk.schedules, {"often": next_fire - 60_000})

    done = await Orchestrator(api_engine).tick()

    body = (await client.get("/v1/schedules/often")).json()
    assert done["schedules"] == 1
    assert body["fired"] == 1 and body["last_id"] == f"sched:often:{next_fire - 60_000}"
    assert (await client.get(f"/v1/jobs/{body['last_id']}")).json()["status"] == "queued"


async def test_a_run_cannot_take_an_id_reserved_for_schedule_ticks(
    client: httpx.AsyncClient,
) -> None:
    # Taking `sched:<name>:<tick>` first would make that tick of a workflow schedule start
    # nothing: such ids are the schedules' own.
    response = await client.post(
        "/v1/runs", json={"workflow": "report", "id": "sched:nightly:1764460800000"}
    )

    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "id"


async def test_a_schedule_name_with_an_at_sign_is_refused_at_the_door(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/schedules", json={"name": "a@1", "function": "f", "every": 60}
    )

    assert response.status_code == 422


# -- a worker's cron_jobs, through its machine route ------------------------------------


async def test_a_worker_puts_its_cron_jobs_through_its_machine_route(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "schedules": [{"name": "cron:tidy", "function": "cron:tidy", "cron": "0 3 * * *"}],
        "trigger": ["cron:tidy"],
    }

    response = await client.post("/v1/machines/m1/schedules", json=body)

    assert response.status_code == 200, response.text
    [put] = response.json()["schedules"]
    assert put["source"] == "worker"
    listed = (await client.get("/v1/schedules/cron:tidy")).json()
    assert listed["last_id"].startswith("sched:cron:tidy@")


async def test_a_worker_may_not_redefine_a_schedule_an_app_declared(
    client: httpx.AsyncClient,
) -> None:
    await _put(client, {"name": "nightly", "function": "nightly", "cron": "0 3 * * *"})
    body = {"schedules": [{"name": "nightly", "function": "nightly", "cron": "* * * * *"}]}

    response = await client.post("/v1/machines/m1/schedules", json=body)

    assert response.status_code == 409
    assert (await client.get("/v1/schedules/nightly")).json()["cron"] == "0 3 * * *"


async def test_a_worker_schedule_starts_only_the_function_of_its_own_name(
    client: httpx.AsyncClient,
) -> None:
    body = {"schedules": [{"name": "cron:tidy", "function": "delete_everything", "every": 60}]}

    response = await client.post("/v1/machines/m1/schedules", json=body)

    assert response.status_code == 422
    assert (await client.get("/v1/schedules")).json()["schedules"] == []
