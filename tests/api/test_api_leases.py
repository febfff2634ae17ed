"""A lease is (machine, token): what another machine sends about a job it does not hold
changes nothing, whatever token it guesses, and is rejected item by item.

The attacker is a machine of its own: it registers a function, submits and claims a job
of it (so it knows what a token looks like), then goes after a job leased to the victim.
"""

from __future__ import annotations

from typing import Any

import httpx
from api_helpers import Register
from litestar import Litestar

from tether.queue.engine import QueueEngine

VICTIM, ATTACKER = "victim-1", "attacker-1"


async def lease_jobs(client: httpx.AsyncClient, register: Register) -> tuple[dict[str, Any], str]:
    """The victim's leased job, and the token of the attacker's own job."""
    await register("add", machine=VICTIM)
    await register("mine", machine=ATTACKER)
    for function in ("add", "mine"):
        response = await client.post("/v1/jobs", json={"function": function, "input": 1})
        assert response.status_code == 201, response.text
    [victims] = await poll(client, VICTIM, "add")
    [own] = await poll(client, ATTACKER, "mine")
    return victims, own["token"]


async def poll(client: httpx.AsyncClient, machine: str, function: str) -> list[dict[str, Any]]:
    body = {"functions": [function], "wait": 0}
    response = await client.post(f"/v1/machines/{machine}/poll", json=body)
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


def guesses(own_token: str) -> list[str]:
    """What an attacker would try: tokens near its own (the counter tokens used to be
    consecutive), small numbers, and its own claim's nonce with other job numbers."""
    tokens = [str(n) for n in range(0, 60)]
    if own_token.isdigit():
        tokens += [str(int(own_token) + d) for d in range(-40, 41)]
    nonce = own_token.split(".")[0]
    tokens += [f"{nonce}.{n}" for n in range(0, 40)]
    return [own_token, *dict.fromkeys(tokens)]


async def report(
    client: httpx.AsyncClient, machine: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/machines/{machine}/results", json={"results": items})
    assert response.status_code == 200, response.text
    verdicts: list[dict[str, Any]] = response.json()["results"]
    return verdicts


async def job_record(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


async def test_a_forged_result_with_guessed_tokens_is_rejected_and_the_job_stays_with_its_machine(
    client: httpx.AsyncClient, register: Register
) -> None:
    job, own_token = await lease_jobs(client, register)
    forged = [
        {"id": job["id"], "token": token, "status": status, "result": "forged"}
        for token in guesses(own_token)
        for status in ("completed", "failed")
    ]

    verdicts = await report(client, ATTACKER, forged)

    assert {(v["accepted"], v["status"], v["reason"]) for v in verdicts} == {
        (False, "running", "lease_not_held")
    }
    record = await job_record(client, job["id"])
    assert (record["status"], record["machine"], record["attempt"]) == ("running", VICTIM, 1)
    assert record["result"] is None and record["error"] is None


async def test_the_holders_own_token_sent_by_another_machine_commits_nothing(
    client: httpx.AsyncClient, register: Register
) -> None:
    job, _ = await lease_jobs(client, register)
    leaked = {"id": job["id"], "token": job["token"], "status": "completed", "result": "forged"}

    [verdict] = await report(client, ATTACKER, [leaked])

    assert (verdict["accepted"], verdict["reason"]) == (False, "lease_not_held")
    record = await job_record(client, job["id"])
    assert (record["status"], record["machine"], record["result"]) == ("running", VICTIM, None)


async def test_a_forged_release_is_rejected_and_counts_nothing(
    client: httpx.AsyncClient, register: Register, app: Litestar
) -> None:
    job, own_token = await lease_jobs(client, register)
    metrics = app.state.services.metrics
    forged = [
        {"id": job["id"], "token": token, "status": "released"}
        for token in [*guesses(own_token), job["token"]]
    ]

    verdicts = await report(client, ATTACKER, forged)

    assert all(not v["accepted"] and v["reason"] == "lease_not_held" for v in verdicts)
    record = await job_record(client, job["id"])
    # Still running on the victim, its attempt not handed back, nothing queued again.
    assert (record["status"], record["machine"], record["attempt"]) == ("running", VICTIM, 1)
    assert await poll(client, ATTACKER, "add") == []
    assert (metrics.jobs_completed, metrics.jobs_failed) == (0, 0)
    assert metrics.results_rejected == len(forged)


async def test_a_heartbeat_naming_a_job_of_another_machine_does_not_extend_it(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    job, _ = await lease_jobs(client, register)
    pk = api_engine.keys.for_id(job["id"])
    # The victim has gone quiet: its lease is about to run out.
    await api_engine.redis.zadd(pk.leases, {job["id"]: 1})

    response = await client.post(f"/v1/machines/{ATTACKER}/heartbeat", json={"held": [job["id"]]})

    assert response.status_code == 200
    assert response.json()["lost"] == [job["id"]]
    assert await api_engine.redis.zscore(pk.leases, job["id"]) == 1


async def test_the_true_holders_result_is_still_accepted_after_forgeries(
    client: httpx.AsyncClient, register: Register
) -> None:
    job, own_token = await lease_jobs(client, register)
    forged = [{"id": job["id"], "token": t, "status": "completed"} for t in guesses(own_token)]
    await report(client, ATTACKER, forged)
    await report(client, ATTACKER, [{"id": job["id"], "token": job["token"], "status": "released"}])

    [verdict] = await report(
        client,
        VICTIM,
        [{"id": job["id"], "token": job["token"], "status": "completed", "result": 2}],
    )

    assert (verdict["accepted"], verdict["status"]) == (True, "completed")
    record = await job_record(client, job["id"])
    assert (record["status"], record["result"], record["machine"]) == ("completed", 2, VICTIM)
