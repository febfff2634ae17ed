"""The orchestrator: time-driven transitions of jobs (and, through hooks, of runs).

Every pass calls scripts that are atomic and check their source state, so any number of
orchestrators can run at once: two that race for the same due job move it once, and one
killed mid-pass leaves nothing half done (the next pass picks up what remains).

An outage of the plane is not blamed on the machines. Each pass starts and ends with a
stamp (``QueueEngine.plane_pass``): when the passes of every orchestrator stopped for a
while (they were down, or Redis was), or every API replica went silent, no heartbeat could
arrive meanwhile, so the stamp restarts the clocks of machine deaths and lease expiry
from now instead of letting them declare healthy machines dead.

With ``shares`` (``tether orchestrator`` does this), replicas divide the partitions
(tether/orchestrator/shares.py): each pass covers only this replica's partitions, and
the stamps of a partition are its owner's passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.errors import ConfigurationError, RedisUnavailable
from tether.orchestrator.shares import Shares
from tether.queue.engine import QueueEngine

if TYPE_CHECKING:
    from tether.orchestrator.webhooks import WebhookPasses

log = logging.getLogger("tether.orchestrator")

Task = Callable[[], Awaitable[int]]


@dataclass
class Orchestrator:
    engine: QueueEngine
    interval: float = 0.1  # seconds between passes: the latency of timers and reaping
    batch: int = 1000
    # Extra passes (e.g. workflow timers), run after the job passes on every tick.
    extra: list[tuple[str, Task]] = field(default_factory=list)
    ticks: int = 0
    trim_every: int = 600  # ticks between trims of the jobs index
    # Longest pause between passes that is not an outage (ms): the engine's plane_gap_ms,
    # or three intervals if those are longer (a slow cadence is not an outage).
    max_gap_ms: int = 0
    outage: bool = False  # the last pass found a gap (logged once per outage)
    # Webhook deliveries (orchestrator/webhooks.py): sent in background tasks it holds.
    webhooks: WebhookPasses = field(init=False)
    # Replicas divide the partitions by lease; None: this one works on every partition.
    shares: Shares | None = None
    # The partitions of the pass under way (None: every one).
    partitions: list[int] | None = None

    def __post_init__(self) -> None:
        if self.max_gap_ms <= 0:
            self.max_gap_ms = max(self.engine.config.plane_gap_ms, int(3000 * self.interval))
        # Workflow runs: timers, workflow timeouts, version assignment (orchestrator/runs.py).
        from tether.orchestrator.runs import run_passes
        from tether.orchestrator.schedules import schedule_passes
        from tether.orchestrator.webhooks import WebhookPasses

        self.webhooks = WebhookPasses(self.engine, self.batch)
        self.extra = [*run_passes(self.engine, self.batch, self.share), *self.extra]
        # Passes every replica makes, whatever its share (a standby's too): each of their
        # transitions is claimed in its own script (a schedule's tick by its revision, a
        # delivery by its lease), so racing replicas do each once, and a replica killed
        # with kill -9 delays no tick until its partitions' leases run out.
        self.every_replica: list[tuple[str, Task]] = [
            *schedule_passes(self.engine, self.batch),
            *self.webhooks.tasks(),
        ]
        names = [name for name, _ in [*self.extra, *self.every_replica]]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            # A pass added twice would run twice per tick (and hide it: tick() reports
            # by name). The run passes are added here; do not pass them as extra.
            raise ConfigurationError(f"orchestrator passes given twice: {', '.join(twice)}")

    def share(self) -> list[int] | None:
        return self.partitions

    async def promote_delayed(self) -> int:
        return await self.engine.promote(self.batch, partitions=self.partitions)

    async def expire_jobs(self) -> int:
        # Nothing to do unless a job was given `expires`: a ZRANGE of an empty zset per
        # partition, in one round trip.
        return len(await self.engine.expire(self.batch, partitions=self.partitions))

    async def reap_leases(self) -> int:
        return len(await self.engine.reap(self.batch, partitions=self.partitions))

    async def reap_machines(self) -> int:
        dead = await self.engine.reap_dead_machines(partitions=self.partitions)
        for machine, released in dead.items():
            log.warning("machine %s declared dead; released %d jobs", machine, len(released))
        return len(dead)

    async def stamp(self, *, begin: bool) -> None:
        plane = await self.engine.plane_pass(
            begin=begin, max_gap_ms=self.max_gap_ms, partitions=self.partitions
        )
        if not begin:
            return
        if plane.gap and not self.outage:
            log.warning(
                "control plane gap (last pass %d ms ago, newest API sign of life %d ms ago):"
                " no heartbeat could arrive, so machine deaths and lease expiry count"
                " from now",
                plane.since_pass_ms,
                plane.since_api_ms,
            )
        elif self.outage and not plane.gap:
            log.info("control plane whole again; machines are judged from here on")
        self.outage = plane.gap

    async def tick(self) -> dict[str, int]:
        """One pass over every time-driven transition; returns what each moved."""
        if self.shares is not None:
            self.partitions = list(await self.shares.current())
            if not self.partitions:
                # More replicas than partitions: this one stands by, but for the passes
                # every replica makes.
                return {name: await task() for name, task in self.every_replica}
        await self.stamp(begin=True)
        done = {
            "promoted": await self.promote_delayed(),
            "expired": await self.expire_jobs(),
            "dead_machines": await self.reap_machines(),
            "reaped": await self.reap_leases(),
        }
        for name, task in [*self.extra, *self.every_replica]:
            done[name] = await task()
        self.ticks += 1
        if self.ticks % self.trim_every == 0:
            done["trimmed"] = await self.engine.trim_index(partitions=self.partitions)
        await self.stamp(begin=False)
        return done

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        backoff = self.interval
        while not stop.is_set():
            try:
                done = await self.tick()
                backoff = self.interval
                busy = any(v >= self.batch for v in done.values())
            except RedisUnavailable as exc:
                log.warning("Redis unavailable, retrying in %.1fs: %s", backoff, exc)
                busy = False
                # Capped low: the first pass after Redis is back is what notices the gap.
                backoff = min(backoff * 2, 1.0)
            if busy:
                continue  # more is due: go again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
        if self.shares is not None:
            # A clean stop hands the partitions over at once, not after a lease.
            with contextlib.suppress(RedisUnavailable):
                await self.shares.leave()
