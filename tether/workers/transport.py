"""The worker's side of the machine endpoints, over one keep-alive connection pool.

    POST /v1/machines/{id}/heartbeat   register functions, extend leases, learn of cancels
    POST /v1/machines/{id}/poll        long poll for up to max_jobs jobs
    POST /v1/machines/{id}/results     a batch of results, each accepted or rejected
    POST /v1/machines/{id}/deregister  goodbye, on a graceful stop
    POST /v1/machines/{id}/logs        captured log lines of jobs still running

Each method makes one request and raises what the API answered (typed) or
``ApiUnavailable``. ``retrying`` wraps a call in backoff with jitter for as long as the
failure is transient (the API or its Redis unreachable, a 5xx), and logs once when the
API goes away and once when it comes back, so a restarted API costs no lost work.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson

from tether._client_http import HttpSession
from tether.errors import TetherError
from tether.protocol import (
    FunctionSpec,
    HeartbeatResponse,
    LeasedJob,
    PollResponse,
)

log = logging.getLogger("tether.worker")
T = TypeVar("T")

# Seconds a long poll may take beyond its wait before the connection is presumed dead.
POLL_SLACK = 10.0


def is_transient(exc: TetherError) -> bool:
    """Worth retrying as is: the API, or the Redis behind it, did not do the work."""
    return exc.status_code >= 500


class Backoff:
    """Exponential backoff with "equal jitter": half fixed, half random, so a fleet of
    workers that lost the API together does not come back in lockstep."""

    def __init__(self, base: float = 0.05, cap: float = 5.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        delay: float = min(self.cap, self.base * 2.0**self.failures)
        self.failures += 1
        return delay / 2 + random.random() * delay / 2

    def reset(self) -> None:
        self.failures = 0


async def retrying(
    op: Callable[[], Awaitable[T]], *, what: str, backoff: Backoff | None = None
) -> T:
    """Await ``op()`` until it succeeds or fails for good (a 4xx); transient failures are
    retried forever with backoff. Bound it from outside by cancelling it."""
    backoff = backoff or Backoff()
    while True:
        try:
            result = await op()
        except TetherError as exc:
            if not is_transient(exc):
                raise
            level = logging.WARNING if backoff.failures == 0 else logging.DEBUG
            delay = backoff.next_delay()
            log.log(level, "%s failed, retrying in %.2fs: %s", what, delay, exc.message)
            await asyncio.sleep(delay)
            continue
        if backoff.failures:
            log.info("%s works again after %d failed attempts", what, backoff.failures)
            backoff.reset()
        return result


class MachineTransport:
    """HTTP calls of one machine."""

    def __init__(self, session: HttpSession, machine_id: str) -> None:
        self.session = session
        self.machine_id = machine_id
        self._base = f"/v1/machines/{machine_id}"

    async def heartbeat(
        self,
        *,
        held: Sequence[str],
        functions: Sequence[FunctionSpec] = (),
        max_jobs: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> HeartbeatResponse:
        body: dict[str, Any] = {"held": list(held)}
        if functions:
            body["functions"] = [f.model_dump(exclude_none=True) for f in functions]
        if max_jobs is not None:
            body["max_jobs"] = max_jobs
        if meta:
            body["meta"] = meta
        # A heartbeat sent twice does what one does: safe to repeat on a fresh connection.
        raw = await self.session.request(
            "POST", f"{self._base}/heartbeat", body=body, repeatable=True
        )
        return HeartbeatResponse.model_validate_json(raw)

    async def put_schedules(
        self, schedules: Sequence[dict[str, Any]], trigger: Sequence[str]
    ) -> None:
        """Put this worker's cron jobs as schedules (``cron_jobs``), and trigger those
        that run at startup."""
        body = {"schedules": list(schedules), "trigger": list(trigger)}
        await self.session.request("POST", f"{self._base}/schedules", body=body)

    async def deregister(self) -> list[str]:
        """Leave: the API drops this machine from the live list (and releases any lease
        it still holds). Returns the released job ids."""
        raw = await self.session.request("POST", f"{self._base}/deregister", body={})
        released: list[str] = orjson.loads(raw)["released"]
        return released

    async def poll(self, functions: Sequence[str], max_jobs: int, wait: float) -> list[LeasedJob]:
        body = {"functions": list(functions), "max_jobs": max_jobs, "wait": wait}
        raw = await self.session.request(
            "POST", f"{self._base}/poll", body=body, timeout=wait + POLL_SLACK
        )
        # Validated in one pass in pydantic-core: faster than building models by hand.
        return PollResponse.model_validate_json(raw).jobs

    async def results(
        self, items: Sequence[dict[str, Any]], logs: Sequence[dict[str, Any]] = ()
    ) -> list[dict[str, Any]]:
        """Report a batch; ``items`` are ResultItem-shaped dicts whose ``result`` may be
        pre-serialized (``orjson.Fragment``), so a result is encoded once. ``logs``
        (LogBatch-shaped) ride along, stored first. Returns the verdicts as
        ResultVerdict-shaped dicts (no model per item on this hot path)."""
        body: dict[str, Any] = {"results": list(items)}
        if logs:
            body["logs"] = list(logs)
        raw = await self.session.request("POST", f"{self._base}/results", body=body)
        verdicts: list[dict[str, Any]] = orjson.loads(raw)["results"]
        return verdicts

    async def logs(self, batches: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Ship LogBatch-shaped dicts; returns LogsVerdict-shaped dicts, in order. Storing
        a line twice is harmless next to losing it: safe to repeat."""
        raw = await self.session.request(
            "POST", f"{self._base}/logs", body={"batches": list(batches)}, repeatable=True
        )
        verdicts: list[dict[str, Any]] = orjson.loads(raw)["batches"]
        return verdicts
