"""The result batcher and the heartbeat, against a scripted HTTP transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from tether._client_http import HttpSession
from tether.protocol import HeartbeatResponse, LeasedJob
from tether.workers import Registry
from tether.workers.executor import Executor
from tether.workers.heartbeat import Heartbeat
from tether.workers.results import ResultBatcher
from tether.workers.transport import MachineTransport

Handler = Callable[[httpx.Request], httpx.Response]


def accept_all(request: httpx.Request) -> httpx.Response:
    items = orjson.loads(request.content)["results"]
    verdicts = [{"id": i["id"], "accepted": True, "status": "completed"} for i in items]
    return httpx.Response(200, json={"results": verdicts})


def transport(handler: Handler) -> MachineTransport:
    session = HttpSession("http://api.test", transport=httpx.MockTransport(handler))
    return MachineTransport(session, "m1")


def item(job_id: str) -> dict[str, Any]:
    return {"id": job_id, "token": "1", "status": "completed", "result": None}


async def test_a_failed_flush_is_retried_until_the_api_takes_it() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(len(orjson.loads(request.content)["results"]))
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused")
        return accept_all(request)

    batcher = ResultBatcher(transport(flaky))
    batcher.start()
    batcher.add(item("a"))
    assert await batcher.flush(timeout=10)
    await batcher.close()
    assert calls == [1, 1, 1]
    assert batcher.accepted == 1


async def test_unacknowledged_results_are_reported_as_held() -> None:
    gate = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return accept_all(request)

    session = HttpSession("http://api.test", transport=httpx.MockTransport(slow))
    batcher = ResultBatcher(MachineTransport(session, "m1"), senders=1)
    batcher.add(item("a"))
    batcher.start()
    await asyncio.sleep(0)  # let the sender take "a"
    batcher.add(item("b"))
    assert sorted(batcher.held()) == ["a", "b"]
    gate.set()
    assert await batcher.flush(timeout=10)
    assert batcher.held() == []
    await batcher.close()


async def test_a_batch_refused_as_too_large_is_split_and_the_culprit_failed() -> None:
    sent: list[list[str]] = []

    def picky(request: httpx.Request) -> httpx.Response:
        items = orjson.loads(request.content)["results"]
        sent.append([i["id"] for i in items])
        if any(i["id"] == "big" and i["status"] == "completed" for i in items):
            error = {"code": "payload_too_large", "message": "too big", "details": {}}
            return httpx.Response(413, json={"error": error})
        return accept_all(request)

    batcher = ResultBatcher(transport(picky), senders=1)
    for job_id in ("a", "big", "c", "d"):
        batcher.add(item(job_id))
    batcher.start()
    assert await batcher.flush(timeout=10)
    await batcher.close()
    assert sent[0] == ["a", "big", "c", "d"]
    assert batcher.accepted == 4  # three results and one failure standing in for "big"


async def test_a_lost_lease_stops_the_job_and_drops_its_result() -> None:
    started = asyncio.Event()
    reported: list[dict[str, Any]] = []

    async def forever(job: LeasedJob, ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    from tether.protocol import FunctionSpec

    registry = Registry()
    registry.add_handler("forever", forever, FunctionSpec(name="forever"))
    executor = Executor(
        registry, max_jobs=2, report=lambda i, size: reported.append(i), base_ctx={}
    )
    batcher = ResultBatcher(transport(accept_all))
    beat = Heartbeat(transport(accept_all), registry, executor, batcher, max_jobs=2, meta={})
    job = LeasedJob(
        id="j1", function="forever", input=None, attempt=1, max_attempts=3, token="7", timeout=None
    )
    executor.start(job)
    await started.wait()
    assert beat.held() == ["j1"]
    beat.apply(HeartbeatResponse(cancel=[], lost=["j1"], heartbeat_interval=0.5, lease_ttl=2))
    assert await executor.wait_idle(timeout=10)
    assert reported == []
    assert beat.held() == []


async def test_a_cancel_from_the_heartbeat_reports_the_job_failed_not_retryable() -> None:
    started = asyncio.Event()
    reported: list[dict[str, Any]] = []

    async def forever(job: LeasedJob, ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    from tether.protocol import FunctionSpec

    registry = Registry()
    registry.add_handler("forever", forever, FunctionSpec(name="forever"))
    executor = Executor(
        registry, max_jobs=2, report=lambda i, size: reported.append(i), base_ctx={}
    )
    beat = Heartbeat(
        transport(accept_all),
        registry,
        executor,
        ResultBatcher(transport(accept_all)),
        max_jobs=2,
        meta={},
    )
    executor.start(
        LeasedJob(
            id="j1",
            function="forever",
            input=None,
            attempt=1,
            max_attempts=3,
            token="7",
            timeout=None,
        )
    )
    await started.wait()
    beat.apply(HeartbeatResponse(cancel=["j1"], lost=[], heartbeat_interval=0.25, lease_ttl=1))
    assert await executor.wait_idle(timeout=10)
    assert [(r["status"], r["retryable"], r["error"]["type"]) for r in reported] == [
        ("failed", False, "Cancelled")
    ]
    assert beat.interval == 0.25
