"""The W3C trace headers on POST /v1/jobs (single, ?wait, batch) and POST /v1/runs: a
valid traceparent is kept with the job or run and handed to the machine that claims it;
an invalid one is ignored and the job gets a trace of its own (the W3C rule: a receiver
that cannot read it starts a new trace, it never refuses the request)."""

from __future__ import annotations

import httpx
import pytest
from api_helpers import Register

from tether.protocol import MAX_TRACEPARENT, TraceContext
from tether.queue.engine import QueueEngine

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"


async def test_a_jobs_traceparent_is_kept_and_handed_to_the_machine_that_claims_it(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    response = await client.post(
        "/v1/jobs",
        json={"function": "add"},
        headers={"traceparent": VALID, "tracestate": "congo=t61rcWkgMzE"},
    )
    assert response.status_code == 201
    job = response.json()
    assert job["trace_id"] == TRACE
    assert (await client.get(f"/v1/jobs/{job['id']}")).json()["trace_id"] == TRACE
    (claimed,) = await api_engine.claim("m1", ["add"], 1)
    assert TraceContext.from_field(claimed.trace) == TraceContext(
        TRACE, SPAN, "01", "congo=t61rcWkgMzE"
    )


async def test_a_job_without_traceparent_keeps_no_trace_field_and_its_trace_id_is_its_id(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    job = (await client.post("/v1/jobs", json={"function": "add"})).json()
    assert job["trace_id"] == job["id"]
    stored = await api_engine.redis.hgetall(api_engine.keys.for_id(job["id"]).job(job["id"]))
    assert "trace" not in {k.decode() if isinstance(k, bytes) else k for k in stored}
    (claimed,) = await api_engine.claim("m1", ["add"], 1)
    assert claimed.trace is None


async def test_every_job_of_a_batch_keeps_the_batchs_traceparent(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    response = await client.post(
        "/v1/jobs/batch",
        json={"jobs": [{"function": "add", "input": i} for i in range(3)]},
        headers={"traceparent": VALID},
    )
    assert response.status_code == 201
    assert {j["trace_id"] for j in response.json()["jobs"]} == {TRACE}


async def test_a_job_submitted_with_wait_keeps_its_traceparent(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("add")
    response = await client.post(
        "/v1/jobs", params={"wait": 0.1}, json={"function": "add"}, headers={"traceparent": VALID}
    )
    assert response.status_code == 201
    assert response.json()["trace_id"] == TRACE
    record = await api_engine.get_job(response.json()["id"])
    assert record.trace is not None and record.trace.startswith(TRACE + SPAN)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param(VALID + "-" + "f" * (4 * MAX_TRACEPARENT), id="oversized"),
        pytest.param(f"00-{'0' * 32}-{SPAN}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="all-zero-span-id"),
        pytest.param(f"{VALID},{VALID}", id="two-headers-joined"),
        pytest.param(VALID.upper(), id="uppercase"),
    ],
)
async def test_an_invalid_traceparent_is_ignored_and_the_job_gets_a_trace_of_its_own(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine, header: str
) -> None:
    await register("add")
    response = await client.post(
        "/v1/jobs", json={"function": "add"}, headers={"traceparent": header}
    )
    assert response.status_code == 201
    job = response.json()
    assert job["trace_id"] == job["id"] != TRACE
    assert (await api_engine.get_job(job["id"])).trace is None


async def test_a_tracestate_cannot_forge_the_stored_context(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    # The compact field is "<context> <tracestate>": a state that looks like a context
    # (or carries separators) must not change what is read back as the context.
    await register("add")
    forged = f"x={'a' * 32}{'b' * 16}01 y"
    response = await client.post(
        "/v1/jobs",
        json={"function": "add"},
        headers={"traceparent": VALID, "tracestate": forged},
    )
    record = await api_engine.get_job(response.json()["id"])
    ctx = TraceContext.from_field(record.trace)
    assert ctx is not None and (ctx.trace_id, ctx.span_id, ctx.state) == (TRACE, SPAN, forged)


async def test_a_runs_traceparent_is_kept_and_shown(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("wf:order@1", kind="workflow")
    response = await client.post(
        "/v1/runs", json={"workflow": "order", "id": "r-traced"}, headers={"traceparent": VALID}
    )
    assert response.status_code == 201, response.text
    assert response.json()["trace_id"] == TRACE
    assert (await client.get("/v1/runs/r-traced")).json()["trace_id"] == TRACE


async def test_a_run_without_traceparent_gets_a_new_random_trace(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("wf:order@1", kind="workflow")
    first = (await client.post("/v1/runs", json={"workflow": "order"})).json()
    second = (await client.post("/v1/runs", json={"workflow": "order"})).json()
    assert len(first["trace_id"]) == 32 and first["trace_id"] != second["trace_id"]


async def test_a_runs_activation_carries_the_runs_trace_to_the_machine(
    client: httpx.AsyncClient, register: Register, api_engine: QueueEngine
) -> None:
    await register("wf:order@1", kind="workflow")
    await client.post(
        "/v1/runs", json={"workflow": "order", "id": "r-act"}, headers={"traceparent": VALID}
    )
    (activation,) = await api_engine.claim("m1", ["wf:order@1"], 1)
    ctx = TraceContext.from_field(activation.trace)
    assert ctx is not None and (ctx.trace_id, ctx.span_id) == (TRACE, SPAN)
