"""The worker's log buffer on its own (tether/workers/logs.py): bounded, never blocking,
keeping each attempt's lines under its own token, and reporting what it dropped."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson

from tether.workers.logs import LogScope, LogShipper


class Recorder:
    """Stands in for the API: records each logs request, accepts every batch."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    async def logs(self, batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.requests.append(batches)
        return [{"job": b["job"], "accepted": True} for b in batches]


def scope(shipper: LogShipper, job: str = "j1", token: str = "t1") -> LogScope:
    return LogScope(shipper, job, token, 1)


def line(message: str) -> str:
    return orjson.dumps({"ts": 0.0, "level": "INFO", "logger": "x", "message": message}).decode()


def messages(batch: dict[str, Any]) -> list[str]:
    return [orjson.loads(text)["message"] for text in batch["lines"]]


async def test_lines_past_the_bound_are_dropped_at_once_and_reported_with_the_next_batch() -> None:
    api = Recorder()
    shipper = LogShipper(api, max_lines=3, linger=0)  # type: ignore[arg-type]
    for i in range(5):
        shipper.put(scope(shipper), line(str(i)))  # never waits, whatever the bound

    shipper.start()
    assert await shipper.flush(5)
    await shipper.close()

    (batch,) = [b for request in api.requests for b in request]
    assert messages(batch) == ["0", "1", "2"]
    assert batch["dropped"] == 2 and shipper.dropped == 2


async def test_two_attempts_of_a_job_ship_their_lines_under_their_own_tokens() -> None:
    api = Recorder()
    shipper = LogShipper(api, linger=0)  # type: ignore[arg-type]
    shipper.put(scope(shipper, token="first"), line("attempt 1"))
    shipper.put(scope(shipper, token="second"), line("attempt 2"))

    shipper.start()
    assert await shipper.flush(5)
    await shipper.close()

    sent = {b["token"]: messages(b) for r in api.requests for b in r}
    assert sent == {"first": ["attempt 1"], "second": ["attempt 2"]}


async def test_lines_logged_from_another_thread_wake_the_shipper() -> None:
    api = Recorder()
    shipper = LogShipper(api, linger=0)  # type: ignore[arg-type]
    shipper.start()
    where = scope(shipper)

    thread = threading.Thread(target=lambda: shipper.put(where, line("from a thread")))
    thread.start()
    thread.join()
    async with asyncio.timeout(5):
        while not api.requests:
            await asyncio.sleep(0.01)
    await shipper.close()

    assert messages(api.requests[0][0]) == ["from a thread"]
