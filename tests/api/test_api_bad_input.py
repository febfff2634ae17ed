"""No input, however malformed, gets a 500: a seeded fuzz of every POST endpoint."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
from api_helpers import Register, error_of

ENDPOINTS = [
    "/v1/jobs",
    "/v1/jobs/batch",
    "/v1/machines/m1/heartbeat",
    "/v1/machines/m1/poll",
    "/v1/machines/m1/results",
    "/v1/jobs/some-job/cancel",
]
FIELDS = [
    "function",
    "input",
    "jobs",
    "functions",
    "results",
    "wait",
    "max_jobs",
    "held",
    "id",
    "token",
    "status",
    "delay",
    "idempotency_key",
    "timeout",
    "meta",
    "name",
]


def junk(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 31, 10**30, 2**63, -(2**64)])
    if choice == 3:
        return rng.choice([0.5, -0.0, 1e308, 30.0000001])
    if choice == 4:
        return rng.choice(["", "add", "a b", "x" * 300, "ü", "\x00", "completed", "../"])
    if choice == 5:
        return "".join(rng.choice('ab{}[]":,') for _ in range(rng.randrange(8)))
    if choice == 6:
        return [junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS): junk(rng, depth + 1) for _ in range(rng.randrange(5))}


async def test_no_malformed_body_on_any_endpoint_gets_a_500(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    rng = random.Random(20261126)
    for _ in range(300):
        path = rng.choice(ENDPOINTS)
        if rng.random() < 0.2:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        elif rng.random() < 0.8:
            # Mostly objects with the fields the endpoints know, holding anything.
            fields = rng.sample(FIELDS, rng.randrange(1, 5))
            body = json.dumps({f: junk(rng) for f in fields}).encode()
        else:
            body = json.dumps(junk(rng)).encode()
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            error_of(response)
