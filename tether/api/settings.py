"""Settings of the HTTP API, read from the environment, with their defaults.

Every setting has a ``TETHER_*`` variable; the same names are used by the orchestrator and
dev mode, so one environment configures a whole deployment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tether.limits import MAX_REGISTERED_FUNCTIONS
from tether.queue.config import QueueConfig
from tether.queue.keys import Keys
from tether.queue.redis_py import Durability

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_QUEUE_DEFAULTS = QueueConfig()


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


# scheme://host[:port], nothing after it: what browsers send in ``Origin``.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s]+$")


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


DURABILITIES = ("async", "replicated", "replicated-aof")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How one API process reaches Redis and what it accepts."""

    redis_url: str = DEFAULT_REDIS_URL  # TETHER_REDIS_URL
    prefix: str = "tether"  # TETHER_PREFIX: the key prefix (hash tag) of the deployment
    partitions: int = 1  # TETHER_PARTITIONS: must match every other process
    # TETHER_MAX_BODY_SIZE: larger request bodies get 413. A results batch carries up to
    # 1,000 results of up to max_payload_bytes each, so this bounds the batch, not a result.
    max_body_size: int = 16 * 1024 * 1024
    # TETHER_MAX_PAYLOAD_SIZE: one input or result, serialized.
    max_payload_size: int = 1024 * 1024
    # TETHER_REDIS_MAX_CONNECTIONS: the pool every request shares. Long polls hold no
    # connection while they wait, so this bounds Redis connections per process however
    # many clients wait; a request finding the pool empty queues for a connection.
    redis_max_connections: int = 32
    # TETHER_REDIS_POOL_TIMEOUT: seconds a request may queue for a pooled connection
    # before it is answered 503. (Long polls claim through half the pool at most, so
    # a burst of them never starves the other requests.)
    redis_pool_timeout: float = 10.0
    # TETHER_REDIS_TIMEOUT: seconds a Redis reply may take; unset or 0: no limit. A
    # limit costs a timer per reply on the hot path, and a stalled Redis is noticed
    # anyway: /healthz pings with its own 2 s limit, clients time out their requests.
    redis_timeout: float | None = None
    # TETHER_RECHECK_INTERVAL: seconds between fallback re-checks of what long polls wait
    # for, in case a notification was lost (one pipeline per interval per process).
    recheck_interval: float = 1.0
    # Slow clients (tether/api/slow_clients.py, docs/operations.md): seconds a request may
    # take to send its headers (TETHER_HEADER_TIMEOUT) and then its body
    # (TETHER_BODY_TIMEOUT), and an idle connection may stay open between requests
    # (TETHER_KEEP_ALIVE_TIMEOUT: workers keep theirs between polls, so past one poll).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 75.0
    # TETHER_REDIS_CLIENT_NAME: how this process's connections appear in CLIENT LIST.
    client_name: str = "tether-api"
    lease_ttl_ms: int = 2000  # TETHER_LEASE_TTL_MS
    machine_dead_after_ms: int = 2000  # TETHER_MACHINE_DEAD_AFTER_MS
    plane_gap_ms: int = _QUEUE_DEFAULTS.plane_gap_ms  # TETHER_PLANE_GAP_MS
    retention_ms: int = _QUEUE_DEFAULTS.retention_ms  # TETHER_RETENTION_MS
    default_max_attempts: int = _QUEUE_DEFAULTS.default_max_attempts  # TETHER_MAX_ATTEMPTS
    default_timeout_ms: int = _QUEUE_DEFAULTS.default_timeout_ms  # TETHER_JOB_TIMEOUT_MS
    # TETHER_JOB_TIMELINES=1: a timeline stream per stand-alone job (costs ~4 KB a job).
    job_timelines: bool = False
    # GET /v1/events (events.py): TETHER_EVENTS_MAX_CLIENTS streams per process (more
    # are answered 503), TETHER_EVENTS_QUEUE events buffered per stream (past that they
    # are dropped and counted), a comment every TETHER_EVENTS_HEARTBEAT seconds.
    events_max_clients: int = 100
    events_queue: int = 1000
    events_heartbeat: float = 15.0
    # TETHER_NO_AUTH=1 (``tether api --no-auth``): serve without API keys, every caller
    # an admin of the default namespace. Unsafe; logged as such at every start.
    auth: bool = True
    # TETHER_CORS_ORIGINS: comma-separated origins (``https://app.example.com``) whose web
    # pages may call the API from a browser; none by default, so CORS is off and state-
    # changing requests carrying a foreign ``Origin`` are refused (see api/browsers.py).
    # ``*`` allows every origin (never with credentials: the API uses none).
    cors_origins: tuple[str, ...] = ()
    # TETHER_MAX_REGISTERED_FUNCTIONS: names the function registry of this deployment may
    # hold (a name never leaves it); a heartbeat registering more is refused (409).
    max_registered_functions: int = MAX_REGISTERED_FUNCTIONS
    # Webhooks (docs/webhooks.md): TETHER_PUBLIC_URL (the dashboard's base URL, for the
    # links in payloads), TETHER_WEBHOOK_ALLOW_HOSTS (comma-separated; empty: any),
    # TETHER_WEBHOOK_MAX_ATTEMPTS, TETHER_WEBHOOK_BACKOFF_MS, TETHER_WEBHOOK_TIMEOUT_MS,
    # TETHER_WEBHOOK_CONCURRENCY.
    public_url: str = ""
    webhook_allow_hosts: tuple[str, ...] = ()
    webhook_max_attempts: int = _QUEUE_DEFAULTS.webhook_max_attempts
    webhook_backoff_ms: int = _QUEUE_DEFAULTS.webhook_backoff_ms
    webhook_timeout_ms: int = _QUEUE_DEFAULTS.webhook_timeout_ms
    webhook_concurrency: int = _QUEUE_DEFAULTS.webhook_concurrency
    # TETHER_DURABILITY: "async" (Redis's own asynchronous replication: a failover may
    # lose the last acknowledged writes), "replicated" (each batch of transitions is
    # followed by WAIT before the API answers: TETHER_DURABILITY_REPLICAS replicas must
    # have it within TETHER_DURABILITY_TIMEOUT_MS, else 503 not_replicated) or
    # "replicated-aof" (WAITAOF, Redis 7.2+: the primary's and the replicas' AOF fsynced).
    durability: str = "async"
    durability_replicas: int = 1
    durability_timeout_ms: int = 1000

    def __post_init__(self) -> None:
        if self.redis_max_connections < 2:
            raise ValueError("redis_max_connections must be at least 2")
        if self.max_body_size < 1024:
            raise ValueError("max_body_size must be at least 1024 bytes")
        if self.recheck_interval <= 0:
            raise ValueError("recheck_interval must be positive")
        if self.max_registered_functions < 1:
            raise ValueError("max_registered_functions must be at least 1")
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"TETHER_CORS_ORIGINS: {origin!r} is not an origin such as "
                    "https://app.example.com (scheme, host and port only; or *)"
                )
        if self.plane_gap_ms <= 0:
            raise ValueError("plane_gap_ms must be positive")
        if self.durability not in DURABILITIES:
            raise ValueError(
                f"TETHER_DURABILITY: {self.durability!r} is not one of {', '.join(DURABILITIES)}"
            )
        if self.durability_replicas < 1 or self.durability_timeout_ms < 1:
            raise ValueError("durability replicas and timeout must be at least 1")
        if min(self.header_timeout, self.body_timeout, self.keep_alive_timeout) <= 0:
            raise ValueError("header, body and keep-alive timeouts must be positive")
        if self.public_url and not re.match(r"^https?://[^\s]+$", self.public_url):
            raise ValueError(f"TETHER_PUBLIC_URL must be an http(s) URL, not {self.public_url!r}")
        if min(self.webhook_max_attempts, self.webhook_timeout_ms, self.webhook_concurrency) < 1:
            raise ValueError("webhook attempts, timeout and concurrency must be at least 1")
        if self.webhook_backoff_ms < 0:
            raise ValueError("TETHER_WEBHOOK_BACKOFF_MS must not be negative")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        """Settings from ``TETHER_*`` variables; unset ones keep their defaults."""
        env = os.environ if env is None else env
        d = cls()
        return cls(
            redis_url=env.get("TETHER_REDIS_URL") or d.redis_url,
            prefix=env.get("TETHER_PREFIX") or d.prefix,
            partitions=_int(env, "TETHER_PARTITIONS", d.partitions),
            max_body_size=_int(env, "TETHER_MAX_BODY_SIZE", d.max_body_size),
            max_payload_size=_int(env, "TETHER_MAX_PAYLOAD_SIZE", d.max_payload_size),
            redis_max_connections=_int(
                env, "TETHER_REDIS_MAX_CONNECTIONS", d.redis_max_connections
            ),
            redis_pool_timeout=_float(env, "TETHER_REDIS_POOL_TIMEOUT", d.redis_pool_timeout),
            redis_timeout=_float(env, "TETHER_REDIS_TIMEOUT", 0.0) or None,
            recheck_interval=_float(env, "TETHER_RECHECK_INTERVAL", d.recheck_interval),
            header_timeout=_float(env, "TETHER_HEADER_TIMEOUT", d.header_timeout),
            body_timeout=_float(env, "TETHER_BODY_TIMEOUT", d.body_timeout),
            keep_alive_timeout=_float(env, "TETHER_KEEP_ALIVE_TIMEOUT", d.keep_alive_timeout),
            client_name=env.get("TETHER_REDIS_CLIENT_NAME") or d.client_name,
            lease_ttl_ms=_int(env, "TETHER_LEASE_TTL_MS", d.lease_ttl_ms),
            machine_dead_after_ms=_int(
                env, "TETHER_MACHINE_DEAD_AFTER_MS", d.machine_dead_after_ms
            ),
            plane_gap_ms=_int(env, "TETHER_PLANE_GAP_MS", d.plane_gap_ms),
            retention_ms=_int(env, "TETHER_RETENTION_MS", d.retention_ms),
            default_max_attempts=_int(env, "TETHER_MAX_ATTEMPTS", d.default_max_attempts),
            default_timeout_ms=_int(env, "TETHER_JOB_TIMEOUT_MS", d.default_timeout_ms),
            job_timelines=env.get("TETHER_JOB_TIMELINES", "0").lower() in ("1", "true", "yes"),
            events_max_clients=_int(env, "TETHER_EVENTS_MAX_CLIENTS", d.events_max_clients),
            events_queue=_int(env, "TETHER_EVENTS_QUEUE", d.events_queue),
            events_heartbeat=_float(env, "TETHER_EVENTS_HEARTBEAT", d.events_heartbeat),
            auth=env.get("TETHER_NO_AUTH", "0").lower() not in ("1", "true", "yes"),
            cors_origins=_origins(env.get("TETHER_CORS_ORIGINS", "")),
            max_registered_functions=_int(
                env, "TETHER_MAX_REGISTERED_FUNCTIONS", d.max_registered_functions
            ),
            public_url=(env.get("TETHER_PUBLIC_URL") or "").rstrip("/"),
            webhook_allow_hosts=tuple(
                h.strip().lower()
                for h in env.get("TETHER_WEBHOOK_ALLOW_HOSTS", "").split(",")
                if h.strip()
            ),
            webhook_max_attempts=_int(env, "TETHER_WEBHOOK_MAX_ATTEMPTS", d.webhook_max_attempts),
            webhook_backoff_ms=_int(env, "TETHER_WEBHOOK_BACKOFF_MS", d.webhook_backoff_ms),
            webhook_timeout_ms=_int(env, "TETHER_WEBHOOK_TIMEOUT_MS", d.webhook_timeout_ms),
            webhook_concurrency=_int(env, "TETHER_WEBHOOK_CONCURRENCY", d.webhook_concurrency),
            durability=env.get("TETHER_DURABILITY") or d.durability,
            durability_replicas=_int(env, "TETHER_DURABILITY_REPLICAS", d.durability_replicas),
            durability_timeout_ms=_int(
                env, "TETHER_DURABILITY_TIMEOUT_MS", d.durability_timeout_ms
            ),
        )

    def redis_durability(self) -> Durability | None:
        """What each batch of transitions waits for before the API answers."""
        if self.durability == "async":
            return None
        return Durability(
            self.durability_replicas,
            self.durability_timeout_ms,
            aof=self.durability == "replicated-aof",
        )

    def queue_config(self) -> QueueConfig:
        return QueueConfig(
            keys=Keys(prefix=self.prefix, partitions=self.partitions),
            lease_ttl_ms=self.lease_ttl_ms,
            machine_dead_after_ms=self.machine_dead_after_ms,
            plane_gap_ms=self.plane_gap_ms,
            retention_ms=self.retention_ms,
            max_payload_bytes=self.max_payload_size,
            default_max_attempts=self.default_max_attempts,
            default_timeout_ms=self.default_timeout_ms,
            job_timelines=self.job_timelines,
            webhook_max_attempts=self.webhook_max_attempts,
            webhook_backoff_ms=self.webhook_backoff_ms,
            webhook_timeout_ms=self.webhook_timeout_ms,
            webhook_concurrency=self.webhook_concurrency,
            webhook_allow_hosts=self.webhook_allow_hosts,
            public_url=self.public_url,
        )
