"""Settings of the queue engine, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.queue.keys import Keys

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class QueueConfig:
    keys: Keys = field(default_factory=Keys)
    # A lease lives this long past the last heartbeat that extended it; with heartbeats
    # every 0.5 s, a machine that stops is noticed in about 2 s.
    lease_ttl_ms: int = 2000
    # A machine whose last heartbeat is older than this is declared dead, counting only
    # the time the plane could hear it (below).
    machine_dead_after_ms: int = 2000
    # A pause of the orchestrators' passes, or a silence of every API replica, longer than
    # this is an outage of the plane: heartbeats could not arrive, so the clocks of
    # machine deaths and lease expiry start again once it is back (lua/plane_pass.lua).
    # Keep it under machine_dead_after_ms minus one heartbeat interval.
    plane_gap_ms: int = 1000
    retention_ms: int = 7 * DAY_MS
    timeline_maxlen: int = 1000
    # A timeline stream per stand-alone job costs ~4 KB and three XADDs a job, most of
    # the engine's memory and a third of its Redis time, for history the job record
    # mostly holds already (timestamps, attempt, machine, error). Off by default; a run's
    # jobs always write to the run's timeline.
    job_timelines: bool = False
    max_payload_bytes: int = 1024 * 1024
    default_max_attempts: int = 5
    default_timeout_ms: int = 300_000
    backoff_ms: int = 1000
    backoff_max_ms: int = 300_000
    # Webhooks (tether/queue/webhooks.py, docs/webhooks.md): attempts per delivery before
    # it is given up, the wait before the second (doubling each time, with jitter, up to
    # the max), how long one POST may take, and how many a namespace's orchestrator sends
    # at once. A claim's lease outlives the timeout, so no two orchestrators send at once.
    webhook_max_attempts: int = 8
    webhook_backoff_ms: int = 1000
    webhook_backoff_max_ms: int = 3_600_000
    webhook_timeout_ms: int = 10_000
    webhook_concurrency: int = 16
    # Hosts webhooks may point at (exact names, or ".example.com" for its subdomains);
    # empty: any host. Webhooks are made by admins, but an allow-list keeps a leaked
    # admin key from aiming the orchestrator at the private network.
    webhook_allow_hosts: tuple[str, ...] = ()
    # The base URL people open the dashboard at (TETHER_PUBLIC_URL): payloads link to
    # the run's page there ('' : no link).
    public_url: str = ""
    # Sticky replay: a run's next activation waits this long for the machine that keeps
    # the run in memory (on its own queue) before any machine serving it may take it.
    sticky_timeout_ms: int = 1000

    @property
    def job_timeline_maxlen(self) -> int:
        """What job scripts get as their timeline maxlen: negated, stand-alone job
        timelines are off while a run's jobs keep the run's length (lua/includes/timeline.lua)."""
        return self.timeline_maxlen if self.job_timelines else -self.timeline_maxlen
