"""The OpenAPI document is what the API really answers: schemathesis generates requests
for every operation of ``/schema/openapi.json`` (valid ones, and invalid ones for the
error paths), sends them to the real app served over HTTP, and checks each answer: no
5xx, a documented status, a documented content type, a body matching the documented
schema. Examples are bounded so the whole run stays well under a minute.

``api_headers`` (tests/api/conftest.py) is sent with every request: where the API wants
credentials, that fixture provides them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from litestar.serialization import encode_json
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.limits import MAX_GET_WAIT, MAX_POLL_WAIT

# The suite's run sends the same cases every time (a finding is then a failure anyone can
# reproduce, not a flake of one CI run); TETHER_SCHEMATHESIS_RANDOM=1 explores afresh.
DERANDOMIZE = os.environ.get("TETHER_SCHEMATHESIS_RANDOM") != "1"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Per operation: valid requests (half of them on records that exist) and invalid ones.
POSITIVE_EXAMPLES = 30
NEGATIVE_EXAMPLES = 15


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, from the app's own document (no Redis needed)."""
    spec = orjson.loads(encode_json(create_app(ApiSettings()).openapi_schema.to_schema()))
    return [
        (method.upper(), path)
        for path, operations in sorted(spec["paths"].items())
        for method in sorted(operations)
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _streams() -> set[tuple[str, str]]:
    """Operations answering a stream that stays open (server-sent events): a request
    to them never ends on its own, so they are not fuzzed here (tests/events reads them
    with a real client, their errors included)."""
    spec = orjson.loads(encode_json(create_app(ApiSettings()).openapi_schema.to_schema()))
    return {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "text/event-stream" in operation.get("responses", {}).get("200", {}).get("content", {})
    }


OPERATIONS = _operations()
FUZZED = [op for op in OPERATIONS if op not in _streams()]


@pytest.fixture
def seeded(api: Any, api_headers: dict[str, str]) -> Iterator[dict[str, str]]:
    """Records that exist, so some requests reach past the 404s: a machine serving
    ``add``, a job of it, a run. Returns path parameters naming them."""
    with httpx.Client(base_url=api.url, headers=api_headers, timeout=10) as http:
        # A version no machine ever registered is refused: m1 registers flow v1 too.
        functions = [{"name": "add"}, {"name": "wf:flow@1", "kind": "workflow"}]
        beat = http.post("/v1/machines/m1/heartbeat", json={"functions": functions})
        assert beat.status_code == 200, beat.text
        job = http.post("/v1/jobs", json={"function": "add", "input": {"a": 1}})
        assert job.status_code == 201, job.text
        run = http.post("/v1/runs", json={"workflow": "flow", "version": 1, "input": 1})
        assert run.status_code == 201, run.text
    yield {
        "machine_id": "m1",
        "job_id": job.json()["id"],
        "run_id": run.json()["id"],
        "key": "ship",
        "name": "go",
    }


def _no_long_waits(case: Any) -> None:
    """A valid ``wait`` would hold the request for up to 30-60 s: make it 0 (an invalid
    one is left alone, to be refused)."""
    if case.operation.path.endswith("/poll") and isinstance(case.body, dict):
        case.body.setdefault("wait", 0)  # the default is 20 s
    if isinstance(case.query, dict) and case.query.get("follow") == "sse":
        # A log stream stays open until its job ends (tests/events/test_log_follow.py
        # reads it); its page form is what is checked here.
        del case.query["follow"]
    for holder, limit in ((case.query, MAX_GET_WAIT), (case.body, MAX_POLL_WAIT)):
        if not isinstance(holder, dict) or "wait" not in holder:
            continue
        value = holder["wait"]
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not isinstance(value, bool) and 0 < number <= limit:
            holder["wait"] = 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("method", "path"), FUZZED, ids=[f"{m} {p}" for m, p in FUZZED])
def test_every_answer_matches_the_openapi_document(
    api: Any, api_headers: dict[str, str], seeded: dict[str, str], method: str, path: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{api.url}/schema/openapi.json")
    operation = schema[path][method]
    names = {p.name for p in operation.path_parameters}
    known = {name: value for name, value in seeded.items() if name in names}
    cases = st.one_of(
        operation.as_strategy(),
        operation.as_strategy(path_parameters=known) if known else operation.as_strategy(),
    )

    @given(case=cases)
    @settings(
        max_examples=POSITIVE_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        derandomize=DERANDOMIZE,
    )
    def valid(case: Any) -> None:
        _no_long_waits(case)
        case.call_and_validate(base_url=api.url, headers=api_headers, checks=CHECKS)

    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @settings(
        max_examples=NEGATIVE_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        derandomize=DERANDOMIZE,
    )
    def invalid(case: Any) -> None:
        _no_long_waits(case)
        case.call_and_validate(base_url=api.url, headers=api_headers, checks=CHECKS)

    valid()
    if any((operation.path_parameters, operation.query, operation.body)):
        invalid()  # (an operation taking nothing cannot be sent anything invalid)


def test_the_document_names_every_route_the_api_serves() -> None:
    app = create_app(ApiSettings())
    served = {
        (method, route.path_format)
        for route in app.routes
        for method in getattr(route, "methods", ())
        # (the dashboard's files are pages for a browser, not operations of the API)
        if method in ("GET", "POST", "PUT", "DELETE")
        and not route.path_format.startswith(("/schema", "/dashboard"))
    }
    documented = {(m, p) for m, p in OPERATIONS}
    assert served == documented


def test_every_documented_error_is_in_the_one_error_shape() -> None:
    spec = orjson.loads(encode_json(create_app(ApiSettings()).openapi_schema.to_schema()))
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (
                        method,
                        path,
                        status,
                    )
