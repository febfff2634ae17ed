"""/v1/machines: heartbeats, long polls and batched results, as a worker uses them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from api_helpers import Register, error_of, until
from litestar import Litestar

from tether.api.notify import Notifier
from tether.api.polling import poll_jobs
from tether.queue.engine import QueueEngine


async def submit(client: httpx.AsyncClient, function: str = "add", input: Any = None) -> str:
    response = await client.post("/v1/jobs", json={"function": function, "input": input})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


async def poll(
    client: httpx.AsyncClient, machine: str = "m1", wait: float = 0, **body: Any
) -> list[dict[str, Any]]:
    body = {"functions": ["add"], "wait": wait, **body}
    response = await client.post(f"/v1/machines/{machine}/poll", json=body)
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


async def report(
    client: httpx.AsyncClient, *results: dict[str, Any], machine: str = "m1"
) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/machines/{machine}/results", json={"results": list(results)})
    assert response.status_code == 200, response.text
    verdicts: list[dict[str, Any]] = response.json()["results"]
    return verdicts


async def test_a_heartbeat_registers_the_machines_functions_with_their_schemas(
    client: httpx.AsyncClient,
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {"functions": [{"name": "add", "input_schema": schema}], "meta": {"pid": 42}}
    response = await client.post("/v1/machines/m1/heartbeat", json=body)
    assert response.status_code == 200
    functions = (await client.get("/v1/functions")).json()["functions"]
    assert functions == [
        {"name": "add", "kind": "function", "input_schema": schema, "machines": ["m1"], "queued": 0}
    ]


async def test_a_heartbeat_answers_when_the_next_one_is_due(register: Register) -> None:
    reply = await register("add")
    assert reply == {"cancel": [], "lost": [], "heartbeat_interval": 0.5, "lease_ttl": 2.0}


async def test_a_heartbeat_tells_the_machine_which_of_its_jobs_were_cancelled(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client)
    [job] = await poll(client)
    await client.post(f"/v1/jobs/{job_id}/cancel")
    reply = await client.post("/v1/machines/m1/heartbeat", json={"held": [job["id"]]})
    assert reply.json()["cancel"] == [job_id]


async def test_a_heartbeat_tells_the_machine_which_jobs_it_no_longer_holds(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    reply = await client.post("/v1/machines/m1/heartbeat", json={"held": ["never-leased"]})
    assert reply.json()["lost"] == ["never-leased"]


async def test_a_heartbeat_extends_the_leases_of_the_machine(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    job_id = await submit(client)
    await poll(client)
    pk = api_engine.keys.for_id(job_id)
    # Age the lease to the epoch, as if the machine had been silent for a long time.
    await api_engine.redis.zadd(pk.leases, {job_id: 1})
    reply = await client.post("/v1/machines/m1/heartbeat", json={"held": [job_id]})
    assert reply.status_code == 200
    now_ms = await api_engine.server_time_ms()
    assert (await api_engine.redis.zscore(pk.leases, job_id) or 0) > now_ms


async def test_listing_machines_shows_a_machine_after_its_heartbeat(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add", machine="box-1")
    machines = (await client.get("/v1/machines")).json()["machines"]
    assert [(m["id"], m["functions"], m["jobs"]) for m in machines] == [("box-1", ["add"], 0)]


async def test_a_deregistered_machine_leaves_the_list_at_once(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add", machine="box-1")
    await register("add", machine="box-2")
    response = await client.post("/v1/machines/box-1/deregister")
    assert response.status_code == 200, response.text
    assert response.json() == {"released": []}
    machines = (await client.get("/v1/machines")).json()["machines"]
    assert [m["id"] for m in machines] == ["box-2"]


async def test_deregistering_hands_back_the_jobs_the_machine_still_held(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client)
    assert [j["id"] for j in await poll(client)] == [job_id]
    response = await client.post("/v1/machines/m1/deregister")
    assert response.json() == {"released": [job_id]}
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "queued"


async def test_deregistering_a_machine_id_with_forbidden_characters_is_422(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/machines/a%20b/deregister")
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "machine_id"


async def test_a_poll_returns_a_ready_job_at_once_with_its_lease(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client, input={"a": 1})
    [job] = await poll(client, wait=30)
    assert job["id"] == job_id
    assert job["input"] == {"a": 1}
    assert job["attempt"] == 1
    assert job["token"]


async def test_a_poll_takes_at_most_max_jobs(client: httpx.AsyncClient, register: Register) -> None:
    await register("add")
    for _ in range(3):
        await submit(client)
    assert len(await poll(client, max_jobs=2)) == 2


async def test_a_poll_with_nothing_to_do_answers_an_empty_list_when_its_wait_elapses(
    client: httpx.AsyncClient, register: Register, notifier: Notifier
) -> None:
    await register("add")
    assert await poll(client, wait=0.05) == []
    assert notifier.waiting_polls == 0


async def test_a_poll_returns_a_job_enqueued_while_it_waits(
    client: httpx.AsyncClient, register: Register, notifier: Notifier
) -> None:
    await register("add")
    waiting = asyncio.create_task(poll(client, wait=30))
    await until(lambda: notifier.waiting_polls == 1)
    job_id = await submit(client)
    jobs = await waiting
    assert [j["id"] for j in jobs] == [job_id]


async def test_a_job_submitted_while_a_poll_waits_is_claimed_for_it_with_its_enqueue(
    client: httpx.AsyncClient, register: Register, notifier: Notifier, app: Litestar
) -> None:
    await register("add")
    waiting = asyncio.create_task(poll(client, wait=30))
    await until(lambda: notifier.parked_polls == 1)
    job_id = await submit(client)
    [job] = await waiting
    assert (job["id"], job["attempt"]) == (job_id, 1)
    assert app.state.services.metrics.jobs_handed_off == 1


async def test_jobs_handed_to_a_poll_that_answered_meanwhile_go_back_to_the_queue(
    client: httpx.AsyncClient,
    register: Register,
    notifier: Notifier,
    app: Litestar,
    api_engine: QueueEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for machine in ("m1", "m2"):
        await register("add", machine=machine)
    # A wait long enough that the poll is still parked when the job is submitted on a
    # loaded machine (not parked, it would be woken and claim the job itself).
    waiting = asyncio.create_task(poll(client, wait=1.0))
    await until(lambda: notifier.parked_polls == 1)
    enqueue_and_claim = api_engine.enqueue_and_claim

    async def poll_answers_first(*args: Any, **kwargs: Any) -> Any:
        # The claim for the poll is made, then the poll's wait runs out before the
        # jobs reach it.
        made = await enqueue_and_claim(*args, **kwargs)
        await waiting
        return made

    monkeypatch.setattr(api_engine, "enqueue_and_claim", poll_answers_first)
    job_id = await submit(client)

    assert await waiting == []
    record = await api_engine.get_job(job_id)
    assert (record.status, record.attempt) == ("queued", 0)
    assert app.state.services.metrics.jobs_handed_off == 0
    assert [j["id"] for j in await poll(client, machine="m2")] == [job_id]


async def test_a_poll_handed_jobs_while_it_claims_answers_at_most_max_jobs(
    register: Register, notifier: Notifier, api_engine: QueueEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register("add")
    first = await api_engine.enqueue("add", 0)
    second = await api_engine.enqueue("add", 1)
    claim = api_engine.claim

    async def handed_meanwhile(machine: str, *args: Any, **kwargs: Any) -> Any:
        # A submitting request hands this poll a job while the poll claims its own.
        [waiter] = notifier._by_function["add"]
        waiter.hand(await claim(machine, ["add"], 1))
        return await claim(machine, *args, **kwargs)

    monkeypatch.setattr(api_engine, "claim", handed_meanwhile)
    jobs = await poll_jobs(api_engine, notifier, "m1", ["add"], 1, 0)

    assert [j.id for j in jobs] == [first.id]
    record = await api_engine.get_job(second.id)
    assert (record.status, record.attempt) == ("queued", 0)


async def test_a_failed_submit_frees_the_poll_it_reserved(
    client: httpx.AsyncClient, register: Register, notifier: Notifier
) -> None:
    await register("add", "mul")
    await client.post("/v1/jobs", json={"function": "mul", "idempotency_key": "k"})
    waiting = asyncio.create_task(poll(client, wait=30))
    await until(lambda: notifier.parked_polls == 1)
    conflict = await client.post("/v1/jobs", json={"function": "add", "idempotency_key": "k"})
    assert conflict.status_code == 409

    job_id = await submit(client)

    jobs = await asyncio.wait_for(waiting, 5)
    assert [j["id"] for j in jobs] == [job_id]


async def test_a_batch_submitted_while_polls_wait_gives_each_poll_its_share(
    client: httpx.AsyncClient, register: Register, notifier: Notifier, app: Litestar
) -> None:
    for machine in ("m1", "m2"):
        await register("add", machine=machine)
    polls = [
        asyncio.create_task(poll(client, machine=m, wait=30, max_jobs=1)) for m in ("m1", "m2")
    ]
    await until(lambda: notifier.parked_polls == 2)
    body = {"jobs": [{"function": "add", "input": i} for i in range(3)]}
    assert (await client.post("/v1/jobs/batch", json=body)).status_code == 201
    answers = await asyncio.gather(*polls)
    assert sorted(len(jobs) for jobs in answers) == [1, 1]
    assert app.state.services.metrics.jobs_handed_off == 2
    # The third job waits in the queue for the next poll.
    assert [j["input"] for j in await poll(client, machine="m1")] == [2]


async def test_a_completed_result_is_accepted_and_committed(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client)
    [job] = await poll(client)
    verdicts = await report(
        client, {"id": job_id, "token": job["token"], "status": "completed", "result": 3}
    )
    assert verdicts == [{"id": job_id, "accepted": True, "status": "completed", "reason": None}]
    record = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert (record["status"], record["result"]) == ("completed", 3)


async def test_a_failed_result_that_is_not_retryable_fails_the_job_with_its_error(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client)
    [job] = await poll(client)
    error = {"type": "ValueError", "message": "bad input"}
    item = {"id": job_id, "token": job["token"], "status": "failed", "error": error}
    [verdict] = await report(client, {**item, "retryable": False})
    assert (verdict["accepted"], verdict["status"]) == (True, "failed")
    record = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert record["error"]["message"] == "bad input"


async def test_a_stale_token_cannot_complete_a_job(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await register("add", machine="m2")
    job_id = await submit(client)
    [first] = await poll(client, machine="m1")
    # m1 hands the job back; m2 takes it with a new token.
    await report(client, {"id": job_id, "token": first["token"], "status": "released"})
    [second] = await poll(client, machine="m2")
    stale = {"id": job_id, "token": first["token"], "status": "completed", "result": "m1"}
    [verdict] = await report(client, stale)
    assert verdict == {
        "id": job_id,
        "accepted": False,
        "status": "running",
        "reason": "lease_not_held",
    }
    fresh = {"id": job_id, "token": second["token"], "status": "completed", "result": "m2"}
    [verdict] = await report(client, fresh, machine="m2")
    assert verdict["accepted"] is True
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["result"] == "m2"


async def test_each_result_of_a_batch_is_judged_on_its_own(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await submit(client)
    [job] = await poll(client)
    verdicts = await report(
        client,
        {"id": job["id"], "token": "999999", "status": "completed"},
        {"id": job["id"], "token": job["token"], "status": "completed"},
        {"id": "no-such-job", "token": "1", "status": "completed"},
    )
    assert [(v["accepted"], v["reason"]) for v in verdicts] == [
        (False, "lease_not_held"),
        (True, None),
        (False, "not_found"),
    ]


async def test_a_released_job_is_ready_again_without_using_an_attempt(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client)
    [job] = await poll(client)
    [verdict] = await report(client, {"id": job_id, "token": job["token"], "status": "released"})
    assert (verdict["accepted"], verdict["status"]) == (True, "queued")
    [again] = await poll(client)
    assert (again["id"], again["attempt"]) == (job_id, 1)


async def test_releasing_with_a_stale_token_is_rejected(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    job_id = await submit(client)
    await poll(client)
    [verdict] = await report(client, {"id": job_id, "token": "424242", "status": "released"})
    assert (verdict["accepted"], verdict["reason"]) == (False, "lease_not_held")


async def test_an_empty_results_batch_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/machines/m1/results", json={"results": []})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "results"


async def test_a_machine_id_with_forbidden_characters_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/machines/bad%20id/poll", json={"functions": ["add"]})
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "machine_id"


async def test_a_poll_wait_over_the_cap_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/machines/m1/poll", json={"functions": ["a"], "wait": 31})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "wait"


async def test_a_machine_without_a_heartbeat_record_is_leased_nothing(
    client: httpx.AsyncClient, register: Register
) -> None:
    # A machine declared dead may have left a long poll open in the API: that poll must
    # not take jobs into the void.
    await register("add")
    await submit(client)

    assert await poll(client, machine="ghost", wait=0) == []
    assert len(await poll(client, machine="m1", wait=0)) == 1


async def test_a_run_started_while_a_poll_of_its_version_waits_hands_it_the_first_activation(
    client: httpx.AsyncClient, register: Register, notifier: Notifier, app: Litestar
) -> None:
    await register("wf:flow@1")
    # A first start loads start_run into Redis: a script unknown to Redis is loaded and
    # sent again after the claim of its round trip ran (finding nothing yet).
    assert (await client.post("/v1/runs", json={"workflow": "flow"})).status_code == 201
    assert [j["function"] for j in await poll(client, functions=["wf:flow@1"])] == ["wf:flow@1"]
    waiting = asyncio.create_task(poll(client, functions=["wf:flow@1"], wait=30))
    await until(lambda: notifier.parked_polls == 1)

    response = await client.post("/v1/runs", json={"workflow": "flow", "input": 1})

    assert response.status_code == 201, response.text
    [job] = await waiting
    assert job["parent"] == response.json()["id"] and job["function"] == "wf:flow@1"
    assert app.state.services.metrics.jobs_handed_off == 1


async def test_a_machine_serving_workflows_is_woken_by_an_activation_on_its_sticky_queue(
    client: httpx.AsyncClient, register: Register, notifier: Notifier, api_engine: QueueEngine
) -> None:
    await register("wf:flow@1")
    waiting = asyncio.create_task(poll(client, functions=["wf:flow@1"], wait=30))
    await until(lambda: notifier.parked_polls == 1)
    pk = api_engine.config.keys.partition(0)
    # As enqueue_activation does for a run kept by m1: its sticky queue, and the news.
    await api_engine.redis.hset(
        pk.job("r1:a2"),
        mapping={
            "fn": "wf:flow@1",
            "status": "queued",
            "input": "null",
            "max_attempts": 1,
            "timeout_ms": 0,
        },
    )
    await api_engine.redis.xadd(pk.sticky_queue("m1"), {"id": "r1:a2"})
    await api_engine.redis.publish(pk.channel, "q:~m1")

    [job] = await waiting

    assert (job["id"], job["function"]) == ("r1:a2", "wf:flow@1")
