"""One trace across real processes: an API and a worker, each exporting its spans with
the OpenTelemetry SDK (configured only by OTEL_* variables) into one JSON-lines file
(OTEL_TRACES_EXPORTER=tether_jsonl). A run of three steps and a child job, started with a
caller's traceparent, must come out as one trace with the right parents."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from proc_stack import Stack, wait_until

pytest.importorskip("opentelemetry.sdk.trace")
pytestmark = pytest.mark.processes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SPEC = "proc_traces:WorkerSettings"

EXPECTED = Counter(
    {
        "tether.enqueue traced": 1,
        "tether.queued wf:traced@1": 2,  # one per activation
        "tether.activation traced": 2,  # before the child, and after it
        "tether.step reserve": 1,
        "tether.step charge": 1,
        "tether.step ship": 1,
        "tether.call receipt": 1,
        "tether.queued receipt": 1,
        "tether.attempt receipt": 1,
    }
)


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _hex(value: str | None) -> str | None:
    return value[2:] if value else None  # the SDK's JSON writes ids as 0x...


def test_a_run_with_three_steps_and_a_child_job_is_one_trace_with_the_right_parents(
    stack: Stack, tmp_path: Path
) -> None:
    spans_file = tmp_path / "spans.jsonl"
    otel = {
        "OTEL_TRACES_EXPORTER": "tether_jsonl",
        "TETHER_OTEL_JSONL": str(spans_file),
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    api = stack.spawn(
        "api",
        ["api", "--host", "127.0.0.1", "--port", str(stack.api_port)],
        stack.env | otel | {"OTEL_SERVICE_NAME": "test-api"},
    )
    stack.wait_healthy(api)
    assert stack.test_keys is not None
    stack.spawn(
        "worker",
        ["worker", SPEC, "--machine-id", "tracer"],
        stack.env | otel | {"TETHER_URL": stack.url, "TETHER_API_KEY": stack.test_keys.machine},
    )
    stack.wait_machines({"tracer"})

    started = httpx.post(
        f"{stack.url}/v1/runs",
        json={"workflow": "traced", "input": "o-1", "id": "traced-1"},
        headers=stack.headers() | {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    assert started.json()["trace_id"] == TRACE_ID
    run = httpx.get(
        f"{stack.url}/v1/runs/traced-1", params={"wait": 20}, headers=stack.headers(), timeout=30
    ).json()
    assert run["status"] == "completed", run

    def complete() -> list[dict[str, Any]] | None:
        spans = _spans(spans_file)
        names = Counter(s["name"] for s in spans)
        return spans if all(names[n] >= k for n, k in EXPECTED.items()) else None

    spans = wait_until(complete, 20, f"the spans {dict(EXPECTED)} in {spans_file}")
    names = Counter(s["name"] for s in spans)
    assert {n: names[n] for n in EXPECTED} == dict(EXPECTED), names

    assert {_hex(s["context"]["trace_id"]) for s in spans} == {TRACE_ID}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    span_id = {id(s): _hex(s["context"]["span_id"]) for s in spans}

    def one(name: str) -> dict[str, Any]:
        (span,) = by_name[name]
        return span

    def parent(s: dict[str, Any]) -> str | None:
        return _hex(s["parent_id"])

    enqueue = one("tether.enqueue traced")
    assert parent(enqueue) == CALLER_SPAN
    assert enqueue["resource"]["attributes"]["service.name"] == "test-api"
    enqueue_id = span_id[id(enqueue)]
    activations = sorted(by_name["tether.activation traced"], key=lambda s: s["start_time"])
    assert [parent(a) for a in activations] == [enqueue_id, enqueue_id]
    assert all(parent(q) == enqueue_id for q in by_name["tether.queued wf:traced@1"])
    first, second = (span_id[id(a)] for a in activations)
    assert parent(one("tether.step reserve")) == first
    assert parent(one("tether.step charge")) == first
    assert parent(one("tether.step ship")) == second
    call = one("tether.call receipt")
    assert parent(call) == enqueue_id  # the call outlives the activation that made it
    call_id = span_id[id(call)]
    attempt = one("tether.attempt receipt")
    assert parent(attempt) == call_id
    assert parent(one("tether.queued receipt")) == call_id

    # The call's times come from the run's history, kept in whole milliseconds (its end
    # is the millisecond the child's end was recorded in): compared to the millisecond.
    def ms(t: str) -> str:
        return t[:23]

    assert ms(call["start_time"]) <= ms(attempt["start_time"])
    assert ms(attempt["end_time"]) <= ms(call["end_time"])
    # The job's own code saw its attempt's span as the traceparent to pass on.
    assert run["result"]["child"]["traceparent"] == f"00-{TRACE_ID}-{span_id[id(attempt)]}-01"
    assert run["result"]["traceparent"] == f"00-{TRACE_ID}-{second}-01"
