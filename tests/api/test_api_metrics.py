"""/metrics: prometheus_client's exposition, read back with prometheus_client's parser."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from api_helpers import Register, until
from litestar import Litestar
from prometheus_client.parser import text_string_to_metric_families

from tether.api.metrics import OTHER, LabelCap, Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def metrics_of(app: Litestar) -> Metrics:
    metrics: Metrics = app.state.metrics
    return metrics


async def finish(
    client: httpx.AsyncClient, function: str, status: str = "completed", **extra: Any
) -> dict[str, Any]:
    """Poll one job of ``function`` and report it with ``status``; the verdict."""
    polled = await client.post("/v1/machines/m1/poll", json={"functions": [function], "wait": 0})
    [job] = polled.json()["jobs"]
    item = {"id": job["id"], "token": job["token"], "status": status, **extra}
    [verdict] = (await client.post("/v1/machines/m1/results", json={"results": [item]})).json()[
        "results"
    ]
    assert verdict["accepted"], verdict
    result: dict[str, Any] = verdict
    return result


async def test_every_family_parses_with_prometheus_clients_parser(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics")
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert families["tether_http_requests"] == "counter"
    assert families["tether_jobs_finished"] == "counter"
    assert families["tether_job_queue_wait_seconds"] == "histogram"
    assert families["tether_job_run_seconds"] == "histogram"
    assert families["tether_http_request_duration_seconds"] == "histogram"
    assert families["tether_queue_depth"] == "gauge"
    assert families["tether_long_polls_parked"] == "gauge"
    assert families["tether_event_streams"] == "gauge"


async def test_requests_are_counted_by_method_route_template_and_status(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.get("/v1/jobs/missing")
    samples = await scrape(client)
    heartbeat = "/v1/machines/{machine_id}/heartbeat"
    assert value(
        samples, "tether_http_requests_total", method="POST", route=heartbeat, status="200"
    ) == (1)
    assert (
        value(
            samples,
            "tether_http_requests_total",
            method="GET",
            route="/v1/jobs/{job_id}",
            status="404",
        )
        == 1
    )


async def test_jobs_enqueued_queue_depths_and_live_machines_are_exposed(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs/batch", json={"jobs": [{"function": "add"}] * 3})
    samples = await scrape(client)
    assert value(samples, "tether_jobs_enqueued_total") == 3
    assert value(samples, "tether_queue_depth", function="add") == 3
    assert value(samples, "tether_machines_live") == 1
    assert value(samples, "tether_long_polls_waiting") == 0
    assert value(samples, "tether_redis_up") == 1


async def test_completed_and_rejected_results_are_counted(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs", json={"function": "add"})
    [job] = (await client.post("/v1/machines/m1/poll", json={"functions": ["add"]})).json()["jobs"]
    done = {"id": job["id"], "token": job["token"], "status": "completed"}
    await client.post("/v1/machines/m1/results", json={"results": [done, done]})
    samples = await scrape(client)
    assert value(samples, "tether_jobs_completed_total") == 1
    assert value(samples, "tether_results_rejected_total") == 1


async def test_finished_attempts_are_counted_by_function_and_outcome(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add", "mul")
    await client.post("/v1/jobs", json={"function": "add"})
    await client.post("/v1/jobs", json={"function": "mul", "max_attempts": 2})
    await client.post("/v1/jobs", json={"function": "mul"})
    await finish(client, "add")
    error = {"type": "Boom", "message": "no"}
    await finish(client, "mul", "failed", error=error)  # retried later
    await finish(client, "mul", "failed", error=error, retryable=False)  # no retry
    samples = await scrape(client)
    finished = "tether_jobs_finished_total"
    assert value(samples, finished, function="add", outcome="completed") == 1
    assert value(samples, finished, function="mul", outcome="retried") == 1
    assert value(samples, finished, function="mul", outcome="failed") == 1


async def test_queue_wait_and_run_time_are_observed_per_function(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs", json={"function": "add"})
    await asyncio.sleep(0.05)  # queued at least 50 ms
    polled = await client.post("/v1/machines/m1/poll", json={"functions": ["add"]})
    [job] = polled.json()["jobs"]
    await asyncio.sleep(0.05)  # ran at least 50 ms
    done = {"id": job["id"], "token": job["token"], "status": "completed"}
    await client.post("/v1/machines/m1/results", json={"results": [done]})
    samples = await scrape(client)
    for name in ("tether_job_queue_wait_seconds", "tether_job_run_seconds"):
        assert value(samples, f"{name}_count", function="add") == 1
        assert 0.04 <= value(samples, f"{name}_sum", function="add") < 5
        assert value(samples, f"{name}_bucket", function="add", le="0.025") == 0


async def test_api_latency_is_observed_per_route_template(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await register("add")
    samples = await scrape(client)
    route = "/v1/machines/{machine_id}/heartbeat"
    name = "tether_http_request_duration_seconds"
    assert value(samples, f"{name}_count", method="POST", route=route) == 2
    assert value(samples, f"{name}_bucket", method="POST", route=route, le="+Inf") == 2


async def test_parked_long_polls_are_a_gauge(
    app: Litestar, client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    poll = asyncio.create_task(
        client.post("/v1/machines/m1/poll", json={"functions": ["add"], "wait": 5})
    )
    await until(lambda: app.state.notifier.parked_polls == 1)
    samples = await scrape(client)
    assert value(samples, "tether_long_polls_parked") == 1
    assert value(samples, "tether_long_polls_waiting") == 1
    await client.post("/v1/jobs", json={"function": "add"})
    assert len((await poll).json()["jobs"]) == 1


async def test_function_labels_past_the_cap_fold_into_other(
    app: Litestar, client: httpx.AsyncClient, register: Register
) -> None:
    """A caller registering many functions cannot grow the series without bound."""
    metrics_of(app).function_label.limit = 2
    names = ["f1", "f2", "f3", "f4"]
    await register(*names)
    await client.post("/v1/jobs/batch", json={"jobs": [{"function": n} for n in names]})
    for n in names:
        await finish(client, n)
    samples = await scrape(client)
    depth_labels = {
        dict(labels)["function"] for (name, labels) in samples if name == "tether_queue_depth"
    }
    assert len(depth_labels) == 3 and OTHER in depth_labels
    finished = {
        dict(labels)["function"]
        for (name, labels) in samples
        if name == "tether_jobs_finished_total"
    }
    assert len(finished) == 3 and OTHER in finished
    assert value(samples, "tether_jobs_finished_total", function=OTHER, outcome="completed") == 2


def test_a_label_cap_passes_the_first_values_and_folds_the_rest() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ["a", "b", "c", "a", "d", "b"]] == ["a", "b", OTHER, "a", OTHER, "b"]


async def test_unknown_http_methods_are_counted_as_other(client: httpx.AsyncClient) -> None:
    """A caller inventing methods cannot grow the series either."""
    for method in ("BREW", "WHEN", "FOO"):
        await client.request(method, "/v1/jobs")
    samples = await scrape(client)
    methods = {
        dict(labels)["method"] for (name, labels) in samples if name == "tether_http_requests_total"
    }
    assert OTHER in methods
    assert not methods & {"BREW", "WHEN", "FOO"}


async def test_a_scrape_drains_attempts_not_yet_measured(
    app: Litestar, client: httpx.AsyncClient, register: Register
) -> None:
    await register("add")
    await client.post("/v1/jobs", json={"function": "add"})
    await finish(client, "add")
    assert metrics_of(app).outcomes.pending == 1  # measured later, off the results path
    samples = await scrape(client)
    assert metrics_of(app).outcomes.pending == 0
    assert value(samples, "tether_jobs_finished_total", function="add", outcome="completed") == 1
