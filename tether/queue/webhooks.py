"""Webhooks: a namespace's run events, POSTed to URLs its admins chose (docs/webhooks.md).

A webhook is a hash ``{t:0}:hook:<id>`` (url, secret, events) listed in ``{t:0}:hooks``
(id -> events); every other partition of the namespace holds a copy of that list, since
a script may read only its own partition's keys. When a run's status changes, the script
that changes it (``lua/includes/hook_event.lua``, called from ``run_timeline``) writes one
delivery per webhook that wants the event, ``{t:p}:hookd:<event>.<hook>``, in the run's
partition, and puts it in that partition's due set ``{t:p}:hook_due``: an event is
recorded if and only if the transition happened. With no webhook in the namespace this
costs one EXISTS each time a run starts waiting or ends, and nothing on job claims,
heartbeats or results (bench/webhook_cost.py counts it).

The orchestrator (tether/orchestrator/webhooks.py) claims due deliveries under a lease
(``claim_deliveries``), POSTs them, and records the outcome with the lease's token
(``finish_delivery``): retried with exponential backoff until ``webhook_max_attempts``,
then given up (``failed``). However many orchestrators run, one holds each attempt.

Delivery states (``DELIVERY_TRANSITIONS``)::

    (none) -> pending                    the run scripts (hook_event)
    pending | retrying -> delivering     claim_deliveries
    delivering -> delivering             claim_deliveries (its lease ran out: resent)
    delivering -> delivered | retrying | failed | dropped    finish_delivery
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from tether.errors import Conflict, NotFound, RegistryFull, ValidationFailed
from tether.limits import (
    MAX_WEBHOOK_DESCRIPTION,
    MAX_WEBHOOK_SECRET_LENGTH,
    MAX_WEBHOOK_URL_LENGTH,
    MAX_WEBHOOKS_PER_NAMESPACE,
    MIN_WEBHOOK_SECRET_LENGTH,
)
from tether.protocol import RunStatus
from tether.queue.config import QueueConfig
from tether.queue.engine import ID_CONFLICT, MISSING, OK, check_id
from tether.queue.keys import PartitionKeys
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import register_scripts
from tether.queue.states import RUN_TRANSITIONS

# The events a webhook may ask for (lua/includes/hook_event.lua makes them).
EVENTS: tuple[str, ...] = (
    "run.awaiting_approval",  # a run waits on a person (ctx.wait_for_approval)
    "run.completed",
    "run.failed",
    "run.cancelled",
    "job.failed",  # a stand-alone job failed for good (dead, or failed not retryable)
)
DEFAULT_EVENTS: tuple[str, ...] = ("run.awaiting_approval", "run.completed", "run.failed")
FULL = -5  # put_webhook: the namespace holds MAX_WEBHOOKS_PER_NAMESPACE already


class DeliveryState(StrEnum):
    PENDING = "pending"  # recorded, never tried
    DELIVERING = "delivering"  # claimed by an orchestrator, under a lease
    RETRYING = "retrying"  # an attempt failed; waits for its next try (next_at)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up after webhook_max_attempts
    DROPPED = "dropped"  # its webhook was deleted before it could be delivered


D = DeliveryState
FINISHED = frozenset({D.DELIVERED, D.FAILED, D.DROPPED})
# Every script that moves a run into waiting or an end state records its events: the
# edges of RUN_TRANSITIONS into those states (each calls run_timeline, which calls
# hook_event).
HOOK_EVENT_SCRIPTS = frozenset(
    script
    for (_, target), scripts in RUN_TRANSITIONS.items()
    if target in (RunStatus.WAITING, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
    for script in scripts
)
# (from, to) -> the scripts that make that move (None: no delivery yet).
DELIVERY_TRANSITIONS: dict[tuple[DeliveryState | None, DeliveryState], frozenset[str]] = {
    (None, D.PENDING): HOOK_EVENT_SCRIPTS,
    (D.PENDING, D.DELIVERING): frozenset({"claim_deliveries"}),
    (D.RETRYING, D.DELIVERING): frozenset({"claim_deliveries"}),
    (D.DELIVERING, D.DELIVERING): frozenset({"claim_deliveries"}),
    (D.DELIVERING, D.DELIVERED): frozenset({"finish_delivery"}),
    (D.DELIVERING, D.RETRYING): frozenset({"finish_delivery"}),
    (D.DELIVERING, D.FAILED): frozenset({"finish_delivery"}),
    (D.DELIVERING, D.DROPPED): frozenset({"finish_delivery"}),
}
# The scripts that manage webhooks themselves (no states: a webhook exists or not).
WEBHOOK_SCRIPTS = frozenset({"put_webhook", "mirror_webhook", "delete_webhook"})


def check_webhook_url(url: str, allow_hosts: tuple[str, ...] = ()) -> str:
    """``url`` if a webhook may point at it: http or https, a host, bounded length, no
    credentials in it, and (when ``allow_hosts`` is set) a host it allows."""

    def bad(why: str) -> ValidationFailed:
        return ValidationFailed(f"url: {why}", details={"field": "url", "value": str(url)[:200]})

    if not isinstance(url, str) or not url or len(url) > MAX_WEBHOOK_URL_LENGTH:
        raise bad(f"1-{MAX_WEBHOOK_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise bad(str(exc)) from exc
    if parts.scheme not in ("http", "https"):
        raise bad("only http and https URLs")
    host = (parts.hostname or "").lower()
    if not host:
        raise bad("a host is needed")
    if parts.username is not None or parts.password is not None:
        raise bad("no user or password in the URL (sign with the secret instead)")
    if allow_hosts and not any(
        host == allowed or (allowed.startswith(".") and host.endswith(allowed))
        for allowed in allow_hosts
    ):
        raise bad(f"host {host!r} is not in TETHER_WEBHOOK_ALLOW_HOSTS")
    del port
    return url


def check_events(events: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise ValidationFailed(
            f"events are some of {', '.join(EVENTS)}",
            details={"field": "events", "value": unknown[:5]},
        )
    return tuple(e for e in EVENTS if e in events)  # in one order, without repeats


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    description: str
    created_by: str
    created_at: int | None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Webhook:
        return cls(
            id=data["id"],
            url=data["url"],
            events=tuple(data.get("events", "").split()),
            secret=data["secret"],
            description=data.get("description", ""),
            created_by=data.get("created_by", ""),
            created_at=int(data["created_at"]) if data.get("created_at") else None,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one webhook, as stored (``{t:p}:hookd:<id>``)."""

    id: str
    hook: str
    event: str
    event_id: str
    run: str  # '' for job.failed
    job: str  # job.failed: the job ('' otherwise)
    function: str  # job.failed: its function
    run_status: str
    workflow: str
    version: int | None
    waiting_on: dict[str, Any] | None
    at: int
    state: DeliveryState
    attempts: int
    next_at: int | None
    last_code: int | None
    last_error: str
    created_at: int
    finished_at: int | None
    body: bytes | None  # what the first finished attempt sent (retries send the same)

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Delivery:
        def num(name: str) -> int | None:
            value = data.get(name)
            return int(value) if value not in (None, "") else None

        waiting_on = data.get("waiting_on")
        body = data.get("body")
        return cls(
            id=data["id"],
            hook=data["hook"],
            event=data["event"],
            event_id=data["event_id"],
            run=data.get("run", ""),
            job=data.get("job", ""),
            function=data.get("function", ""),
            run_status=data["run_status"],
            workflow=data.get("workflow", ""),
            version=num("version"),
            waiting_on=orjson.loads(waiting_on) if waiting_on else None,
            at=num("at") or 0,
            state=DeliveryState(data["state"]),
            attempts=num("attempts") or 0,
            next_at=num("next_at"),
            last_code=num("last_code"),
            last_error=data.get("last_error", ""),
            created_at=num("created_at") or 0,
            finished_at=num("finished_at"),
            body=body.encode() if body else None,
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery an orchestrator holds for one attempt."""

    delivery: Delivery
    token: str
    partition: PartitionKeys


class WebhookEngine:
    """One typed method per webhook transition (``lua/*webhook*.lua``, ``*deliver*``)."""

    def __init__(self, redis: Client, config: QueueConfig | None = None) -> None:
        self.redis = redis
        self.config = config or QueueConfig()
        self.keys = self.config.keys
        self.home = self.keys.partition(0)  # where the namespace's webhooks live
        self._scripts = register_scripts(redis)

    async def create(
        self,
        url: str,
        events: list[str] | tuple[str, ...] = DEFAULT_EVENTS,
        *,
        secret: str | None = None,
        description: str = "",
        created_by: str = "",
    ) -> Webhook:
        """A new webhook; its secret (made up when not given) is in the answer, the only
        time an API caller sees it."""
        check_webhook_url(url, self.config.webhook_allow_hosts)
        wanted = check_events(events)
        if secret is None:
            secret = "whsec_" + secrets.token_urlsafe(32)
        elif not (
            MIN_WEBHOOK_SECRET_LENGTH <= len(secret) <= MAX_WEBHOOK_SECRET_LENGTH
            and secret.isprintable()
        ):
            raise ValidationFailed(
                f"secret: {MIN_WEBHOOK_SECRET_LENGTH}-{MAX_WEBHOOK_SECRET_LENGTH} printable"
                " characters",
                details={"field": "secret"},
            )
        if len(description) > MAX_WEBHOOK_DESCRIPTION:
            raise ValidationFailed(
                f"description: at most {MAX_WEBHOOK_DESCRIPTION} characters",
                details={"field": "description"},
            )
        hook_id = "wh_" + secrets.token_hex(8)
        joined = " ".join(wanted)
        with redis_errors():
            reply = await self._scripts["put_webhook"](
                [self.home.hook(hook_id), self.home.hooks],
                [
                    hook_id, joined, MAX_WEBHOOKS_PER_NAMESPACE, "url", url,
                    "secret", secret, "description", description, "created_by", created_by,
                ],
            )  # fmt: skip
            code = int(reply[0])
            if code == FULL:
                raise RegistryFull(
                    f"a namespace holds at most {MAX_WEBHOOKS_PER_NAMESPACE} webhooks",
                    details={"limit": MAX_WEBHOOKS_PER_NAMESPACE},
                )
            if code == ID_CONFLICT:  # 64 random bits taken: never in practice
                raise Conflict("webhook id taken; try again", details={"id": hook_id})
            for pk in self.keys.all_partitions()[1:]:
                await self._scripts["mirror_webhook"](
                    [pk.hooks, pk.hook_log(hook_id)], [hook_id, joined]
                )
        return await self.get(hook_id)

    async def get(self, hook_id: str) -> Webhook:
        check_id(hook_id, "webhook id")
        with redis_errors():
            data = cast(dict[str, str], await self.redis.hgetall(self.home.hook(hook_id)))
        if not data:
            raise NotFound(f"no webhook {hook_id}", details={"id": hook_id})
        return Webhook.from_hash(data)

    async def list_webhooks(self) -> list[Webhook]:
        with redis_errors():
            ids = cast(list[str], await self.redis.hkeys(self.home.hooks))
            async with self.redis.pipeline(transaction=False) as pipe:
                for hook_id in ids:
                    pipe.hgetall(self.home.hook(hook_id))
                rows = await pipe.execute()
        return sorted(
            (Webhook.from_hash(r) for r in rows if r and "id" in r),
            key=lambda w: (w.created_at or 0, w.id),
        )

    async def delete(self, hook_id: str) -> Webhook:
        hook = await self.get(hook_id)
        with redis_errors():
            # The copies first: a webhook still listed in partition 0 can be deleted again.
            for pk in self.keys.all_partitions()[1:]:
                await self._scripts["mirror_webhook"](
                    [pk.hooks, pk.hook_log(hook_id)], [hook_id, ""]
                )
            reply = await self._scripts["delete_webhook"](
                [self.home.hook(hook_id), self.home.hooks, self.home.hook_log(hook_id)],
                [hook_id],
            )
        if int(reply[0]) == MISSING:
            raise NotFound(f"no webhook {hook_id}", details={"id": hook_id})
        return hook

    async def deliveries(self, hook_id: str, limit: int = 50) -> list[Delivery]:
        """A webhook's newest deliveries (of every partition), newest first."""
        await self.get(hook_id)
        found: list[Delivery] = []
        with redis_errors():
            for pk in self.keys.all_partitions():
                ids = cast(
                    list[str], await self.redis.zrevrange(pk.hook_log(hook_id), 0, limit - 1)
                )
                async with self.redis.pipeline(transaction=False) as pipe:
                    for delivery_id in ids:
                        pipe.hgetall(pk.hook_delivery(delivery_id))
                    rows = await pipe.execute()
                found.extend(Delivery.from_hash(r) for r in rows if r and "id" in r)
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return found[:limit]

    # -- the orchestrator's side -----------------------------------------------------

    async def claim(self, pk: PartitionKeys, limit: int, lease_ms: int) -> list[Claimed]:
        """Due deliveries of partition ``pk``, each held for ``lease_ms`` by this caller."""
        if limit <= 0:
            return []
        with redis_errors():
            reply = await self._scripts["claim_deliveries"](
                [pk.hook_due], [pk.prefix, limit, lease_ms, secrets.token_hex(16)]
            )
            triples = [(str(reply[i]), str(reply[i + 1])) for i in range(0, len(reply), 3)]
            if not triples:
                return []
            async with self.redis.pipeline(transaction=False) as pipe:
                for delivery_id, _ in triples:
                    pipe.hgetall(pk.hook_delivery(delivery_id))
                rows = await pipe.execute()
        return [
            Claimed(Delivery.from_hash(row), token, pk)
            for (_, token), row in zip(triples, rows, strict=True)
            if row
        ]

    async def finish(
        self,
        claimed: Claimed,
        outcome: DeliveryState,
        *,
        next_at: int | None = None,
        code: int | None = None,
        error: str = "",
        body: bytes = b"",
    ) -> bool:
        """Record an attempt's outcome; False if its lease was lost (nothing changed)."""
        pk, d = claimed.partition, claimed.delivery
        with redis_errors():
            reply = await self._scripts["finish_delivery"](
                [pk.hook_delivery(d.id), pk.hook_due],
                [
                    d.id, claimed.token, outcome.value, next_at if next_at is not None else "",
                    code if code is not None else "", error[:500], self.config.retention_ms,
                    body,
                ],
            )  # fmt: skip
        return int(reply[0]) == OK

    async def now_ms(self) -> int:
        with redis_errors():
            seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
