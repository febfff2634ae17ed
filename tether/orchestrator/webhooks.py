"""The orchestrator's pass for webhooks, made by every replica (``Orchestrator.every_replica``).

``deliver_webhooks`` claims the due deliveries of the namespace (``claim_deliveries``:
each under a lease, so of any number of orchestrators one sends each attempt) and sends
them in background tasks: the pass itself never waits on a receiver, so a slow or dead
endpoint delays no timer, lease or schedule. At most ``webhook_concurrency`` attempts are
in flight per namespace and process; each POST is bounded by ``webhook_timeout_ms``, and
the lease outlives it (``lease_ms``), so an attempt still in flight is never claimed
again. An orchestrator killed mid-send leaves its deliveries to be claimed again when
their lease ends: delivery is at least once, and a receiver that must act once keys on
the event id (``Tether-Delivery`` is the same on every retry).

Cost on a pass with nothing due: one EVALSHA (a ZRANGEBYSCORE) per partition.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from tether.errors import NotFound, TetherError
from tether.queue.engine import QueueEngine
from tether.queue.records import JobRecord
from tether.queue.runs import RunEngine, RunRecord
from tether.queue.webhooks import Claimed, Delivery, DeliveryState, WebhookEngine
from tether.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger("tether.orchestrator")

# A result larger than this (serialized) is left out of the payload (result_truncated):
# a chat message or an e-mail needs a summary, the API has the rest.
MAX_RESULT_IN_PAYLOAD = 8 * 1024
MAX_ERROR_MESSAGE = 2000
USER_AGENT = "tether-webhooks/1"


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def build_payload(d: Delivery, run: RunRecord | None, namespace: str, public_url: str) -> bytes:
    """The JSON body of a delivery: the event, the run as it ended (or as it waits), what
    it waits for, and a link to its dashboard page."""
    run_out: dict[str, Any] = {
        "id": d.run,
        "workflow": d.workflow,
        "version": d.version,
        "status": d.run_status,  # at the event (the run may have moved on since)
    }
    if run is not None:
        run_out |= {
            "tags": run.tags,
            "parent": run.parent,
            "created_at": _iso(run.created_at),
            "finished_at": _iso(run.finished_at) if d.event != "run.awaiting_approval" else None,
        }
        if d.event == "run.completed":
            result = orjson.dumps(run.result)
            small = len(result) <= MAX_RESULT_IN_PAYLOAD
            run_out["result"] = run.result if small else None
            run_out["result_truncated"] = not small
        if d.event in ("run.failed", "run.cancelled") and run.error is not None:
            run_out["error"] = {
                "type": run.error.type,
                "message": run.error.message[:MAX_ERROR_MESSAGE],
            }
    link = f"{public_url}/dashboard/#/runs/{quote(d.run, safe='')}" if public_url else None
    payload = {
        "id": d.event_id,
        "type": d.event,
        "created_at": _iso(d.at),
        "namespace": namespace,
        "run": run_out,
        "waiting_on": d.waiting_on,
        "links": {"dashboard": link},
    }
    return orjson.dumps(payload)


def build_job_payload(d: Delivery, job: JobRecord | None, namespace: str, public_url: str) -> bytes:
    """The JSON body of a ``job.failed`` delivery: the job, its last error, a link."""
    job_out: dict[str, Any] = {"id": d.job, "function": d.function, "status": d.run_status}
    if job is not None:
        job_out |= {
            "attempt": job.attempt,
            "max_attempts": job.max_attempts,
            "tags": job.tags,
            "enqueued_at": _iso(job.enqueued_at),
            "finished_at": _iso(job.finished_at),
        }
        if job.error is not None:
            job_out["error"] = {
                "type": job.error.type,
                "message": job.error.message[:MAX_ERROR_MESSAGE],
            }
    link = f"{public_url}/dashboard/#/jobs/{quote(d.job, safe='')}" if public_url else None
    payload = {
        "id": d.event_id,
        "type": d.event,
        "created_at": _iso(d.at),
        "namespace": namespace,
        "job": job_out,
        "links": {"dashboard": link},
    }
    return orjson.dumps(payload)


class WebhookPasses:
    def __init__(self, engine: QueueEngine, batch: int = 1000) -> None:
        cfg = engine.config
        self.config = cfg
        self.hooks = WebhookEngine(engine.redis, cfg)
        self.runs = RunEngine(engine.redis, cfg)
        self.engine = engine
        self.batch = batch
        self.concurrency = cfg.webhook_concurrency
        # Past the POST's own limit, with room for the Redis calls around it.
        self.lease_ms = 2 * cfg.webhook_timeout_ms + 5000
        self.in_flight: set[asyncio.Task[None]] = set()

    async def deliver(self) -> int:
        """Claim what is due (up to the free slots) and start sending it; returns how
        many attempts were started."""
        started = 0
        for pk in self.hooks.keys.all_partitions():
            free = min(self.concurrency - len(self.in_flight), self.batch)
            if free <= 0:
                break
            for claimed in await self.hooks.claim(pk, free, self.lease_ms):
                task = asyncio.create_task(
                    self._attempt(claimed), name=f"webhook-{claimed.delivery.id}"
                )
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
                started += 1
        return started

    async def _attempt(self, claimed: Claimed) -> None:
        try:
            await self._send(claimed)
        except TetherError as exc:  # Redis went away mid-attempt: the lease will lapse
            log.warning("webhook delivery %s: %s", claimed.delivery.id, exc)
        except Exception:  # one bad delivery must not take the orchestrator down
            log.exception("webhook delivery %s failed unexpectedly", claimed.delivery.id)

    async def _send(self, claimed: Claimed) -> None:
        d = claimed.delivery
        try:
            hook = await self.hooks.get(d.hook)
        except NotFound:
            await self.hooks.finish(claimed, DeliveryState.DROPPED, error="webhook deleted")
            return
        body = d.body
        namespace, public_url = self.config.keys.namespace, self.config.public_url
        if body is None and d.job:
            try:
                job: JobRecord | None = await self.engine.get_job(d.job)
            except NotFound:
                job = None
            body = build_job_payload(d, job, namespace, public_url)
        if body is None:
            try:
                run: RunRecord | None = await self.runs.get(d.run)
            except NotFound:
                run = None  # expired: the event's own fields still say what happened
            body = build_payload(d, run, namespace, public_url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(hook.secret, body, int(time.time())),
            EVENT_HEADER: d.event,
            DELIVERY_HEADER: d.id,
        }
        code: int | None = None
        error = ""
        try:
            timeout = self.config.webhook_timeout_ms / 1000
            # Redirects are not followed (a receiver could bounce us into the private
            # network), and the answer's body is never read (it could be endless).
            # httpx's timeout bounds each read and write; this bounds the whole attempt,
            # so a receiver dripping its headers byte by byte cannot outlast the lease.
            async with (
                asyncio.timeout(timeout),
                httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
                client.stream("POST", hook.url, content=body, headers=headers) as response,
            ):
                code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        if code is not None and 200 <= code < 300:
            await self.hooks.finish(claimed, DeliveryState.DELIVERED, code=code, body=body)
            return
        error = error or f"HTTP {code}"
        if d.attempts >= self.config.webhook_max_attempts:
            await self.hooks.finish(
                claimed, DeliveryState.FAILED, code=code, error=error, body=body
            )
            log.warning(
                "webhook %s: gave up on delivery %s (%s of run %s) after %d attempts: %s",
                hook.id, d.id, d.event, d.run, d.attempts, error,
            )  # fmt: skip
            return
        wait = self.backoff_ms(d.attempts)
        next_at = await self.hooks.now_ms() + wait
        await self.hooks.finish(
            claimed, DeliveryState.RETRYING, next_at=next_at, code=code, error=error, body=body
        )

    def backoff_ms(self, attempts: int) -> int:
        """The wait after the ``attempts``-th failed attempt: doubling from
        ``webhook_backoff_ms``, capped, with jitter (half to all of it) so a receiver
        that comes back is not hit by every retry at once."""
        cfg = self.config
        full = min(cfg.webhook_backoff_max_ms, cfg.webhook_backoff_ms * 2 ** min(attempts - 1, 40))
        return int(full * (0.5 + random.random() / 2))

    async def drain(self) -> None:
        """Wait for the attempts in flight (tests, and a clean stop)."""
        while self.in_flight:
            await asyncio.gather(*list(self.in_flight), return_exceptions=True)

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[int]]]]:
        return [("webhooks", self.deliver)]


def webhook_passes(
    engine: QueueEngine, batch: int = 1000
) -> list[tuple[str, Callable[[], Awaitable[int]]]]:
    """The passes for ``Orchestrator.every_replica``."""
    return WebhookPasses(engine, batch).tasks()
