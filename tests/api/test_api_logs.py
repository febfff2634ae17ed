"""The log routes: machines ship lines (``POST /v1/machines/{id}/logs``, or riding their
results), viewers read them (``GET /v1/jobs|runs/{id}/logs``): paged by cursor, followed
by long poll; only the holding machine writes, and every input is bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from api_helpers import client_for, error_of
from auth_helpers import TestKeys
from litestar import Litestar

from tether.limits import MAX_LOG_BATCH_LINES, MAX_LOG_EXC_CHARS, MAX_LOG_MESSAGE_CHARS


def line(message: str, **extra: Any) -> str:
    """One line as a worker sends it: a JSON object's text."""
    fields = {"ts": 1_800_000_000.5, "level": "INFO", "logger": "app", "message": message}
    return orjson.dumps({**fields, **extra}).decode()


@pytest.fixture
async def machine(app: Litestar, test_keys: TestKeys) -> Any:
    async with client_for(app, test_keys.machine) as c:
        yield c


@pytest.fixture
async def viewer(app: Litestar, test_keys: TestKeys) -> Any:
    async with client_for(app, test_keys.viewer) as c:
        yield c


async def heartbeat(machine: httpx.AsyncClient, m: str = "m1") -> None:
    body = {"functions": [{"name": "f"}]}
    assert (await machine.post(f"/v1/machines/{m}/heartbeat", json=body)).status_code == 200


async def lease(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, m: str = "m1"
) -> dict[str, Any]:
    await heartbeat(machine, m)
    response = await client.post("/v1/jobs", json={"function": "f"})
    assert response.status_code == 201, response.text
    polled = await machine.post(f"/v1/machines/{m}/poll", json={"functions": ["f"], "wait": 0})
    (job,) = polled.json()["jobs"]
    return dict(job)


async def ship(
    machine: httpx.AsyncClient, job: dict[str, Any], *lines: str, m: str = "m1",
    token: str | None = None, dropped: int = 0,
) -> httpx.Response:  # fmt: skip
    batch = {"job": job["id"], "token": token or job["token"], "lines": list(lines)}
    if dropped:
        batch["dropped"] = dropped
    return await machine.post(f"/v1/machines/{m}/logs", json={"batches": [batch]})


async def test_shipped_lines_are_read_back_in_pages_that_follow_a_cursor(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)
    response = await ship(machine, job, *[line(f"l{i}", step=None) for i in range(5)])
    assert response.json() == {
        "batches": [{"job": job["id"], "accepted": True, "trimmed": 0, "reason": None}]
    }

    first = (await viewer.get(f"/v1/jobs/{job['id']}/logs", params={"limit": 3})).json()
    rest = (
        await viewer.get(f"/v1/jobs/{job['id']}/logs", params={"after": first["cursor"]})
    ).json()

    assert [x["message"] for x in first["lines"]] == ["l0", "l1", "l2"]
    assert [x["message"] for x in rest["lines"]] == ["l3", "l4"]
    assert rest["finished"] is False and rest["dropped"] == 0
    assert first["lines"][0]["job"] == job["id"] and first["lines"][0]["logger"] == "app"


async def test_lines_riding_a_result_are_stored_before_the_job_ends(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)
    body = {
        "results": [{"id": job["id"], "token": job["token"], "status": "completed"}],
        "logs": [{"job": job["id"], "token": job["token"], "lines": [line("last words")]}],
    }
    assert (await machine.post("/v1/machines/m1/results", json=body)).status_code == 200

    page = (await viewer.get(f"/v1/jobs/{job['id']}/logs")).json()

    assert [x["message"] for x in page["lines"]] == ["last words"]
    assert page["finished"] is True


async def test_a_forged_token_stores_nothing_and_says_why(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)

    response = await ship(machine, job, line("forged"), token="f" * 32)

    assert response.json()["batches"][0] == {
        "job": job["id"], "accepted": False, "trimmed": 0, "reason": "lease_not_held"
    }  # fmt: skip
    assert (await viewer.get(f"/v1/jobs/{job['id']}/logs")).json()["lines"] == []


async def test_another_machine_cannot_write_lines_of_a_job_it_never_held(
    client: httpx.AsyncClient, machine: httpx.AsyncClient
) -> None:
    job = await lease(client, machine)
    await heartbeat(machine, "m2")

    response = await ship(machine, job, line("not mine"), m="m2")

    assert response.json()["batches"][0]["reason"] == "lease_not_held"


async def test_a_made_up_job_id_is_not_found_and_writes_nothing(
    machine: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    await heartbeat(machine)

    response = await ship(machine, {"id": "made-up", "token": "t"}, line("x"))

    assert response.json()["batches"][0]["reason"] == "not_found"
    assert (await viewer.get("/v1/jobs/made-up/logs")).status_code == 404


async def test_only_machines_ship_lines_and_machines_cannot_read_them(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)

    assert (await ship(viewer, job, line("x"))).status_code == 403
    assert (await machine.get(f"/v1/jobs/{job['id']}/logs")).status_code == 403


async def test_more_lines_in_one_request_than_the_limit_is_a_422_naming_it(
    client: httpx.AsyncClient, machine: httpx.AsyncClient
) -> None:
    job = await lease(client, machine)
    half = [line("x")] * (MAX_LOG_BATCH_LINES // 2 + 1)
    twice = {
        "batches": [{"job": job["id"], "token": job["token"], "lines": half} for _ in range(2)]
    }

    response = await machine.post("/v1/machines/m1/logs", json=twice)

    assert response.status_code == 422
    assert error_of(response)["details"]["limit"] == MAX_LOG_BATCH_LINES


async def test_a_huge_message_and_traceback_are_cut_and_marked_not_refused(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)
    huge = line("m" * 100_000, exc="head " + "t" * 100_000 + " ValueError: at the end")

    assert (await ship(machine, job, huge, line("next"))).json()["batches"][0]["accepted"]
    stored = (await viewer.get(f"/v1/jobs/{job['id']}/logs")).json()["lines"]

    assert len(stored) == 2 and stored[1]["message"] == "next"
    assert stored[0]["message"].startswith("m" * MAX_LOG_MESSAGE_CHARS + "…[")
    assert stored[0]["exc"].endswith("ValueError: at the end")  # the end of a traceback stays
    assert len(stored[0]["exc"]) < MAX_LOG_EXC_CHARS + 40


async def test_a_bad_cursor_or_limit_is_a_422(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)

    for params in ({"after": "nope"}, {"limit": 0}, {"limit": 100_000}, {"wait": 1000}):
        response = await viewer.get(f"/v1/jobs/{job['id']}/logs", params=params)
        assert response.status_code == 422, params


async def test_a_long_poll_for_logs_answers_as_soon_as_a_line_arrives(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)
    waiting = asyncio.create_task(viewer.get(f"/v1/jobs/{job['id']}/logs", params={"wait": 30}))
    await asyncio.sleep(0.2)
    assert not waiting.done()

    await ship(machine, job, line("woke"))
    async with asyncio.timeout(5):  # the recheck fallback would take a second: not it
        page = (await waiting).json()

    assert [x["message"] for x in page["lines"]] == ["woke"]


async def test_a_long_poll_for_logs_answers_when_the_job_ends_without_a_line(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)
    waiting = asyncio.create_task(viewer.get(f"/v1/jobs/{job['id']}/logs", params={"wait": 30}))
    await asyncio.sleep(0.2)

    result = {"id": job["id"], "token": job["token"], "status": "completed"}
    await machine.post("/v1/machines/m1/results", json={"results": [result]})
    async with asyncio.timeout(5):
        page = (await waiting).json()

    assert page["lines"] == [] and page["finished"] is True


async def test_dropped_lines_reported_by_a_machine_show_with_the_logs_and_in_metrics(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient,
) -> None:  # fmt: skip
    job = await lease(client, machine)

    await ship(machine, job, line("kept"), dropped=41)

    assert (await viewer.get(f"/v1/jobs/{job['id']}/logs")).json()["dropped"] == 41
    metrics = (await client.get("/metrics")).text
    assert 'tether_log_lines_dropped_total{reason="buffer"} 41.0' in metrics


async def test_odd_lines_from_a_machine_are_shown_as_text_never_a_500(
    client: httpx.AsyncClient, machine: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    job = await lease(client, machine)
    odd = ["not json {", "[1, 2]", '{"level": 5, "step": "x", "ts": "soon", "job": "other"}']

    assert (await ship(machine, job, *odd)).json()["batches"][0]["accepted"]
    response = await viewer.get(f"/v1/jobs/{job['id']}/logs")

    assert response.status_code == 200
    shown = response.json()["lines"]
    assert [x["message"] for x in shown[:2]] == ["not json {", "[1, 2]"]
    assert (shown[2]["level"], shown[2]["step"], shown[2]["ts"]) == ("5", None, None)
    assert shown[2]["job"] == job["id"]  # a job's log names the job, whatever a line says
