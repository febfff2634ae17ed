"""One heartbeat per machine (never one per job), every ``heartbeat_interval`` seconds.

Each beat lists the jobs this machine holds (running, or finished with the result not
yet acknowledged) and so extends all of their leases in one call; the first beat, and one
every ``REGISTER_EVERY`` seconds or after a failure, also registers the functions it
serves with their input schemas. The answer names jobs to stop:

- ``cancel``: somebody asked to cancel a running job: its task is cancelled;
- ``lost``: the machine no longer holds the lease (it was presumed dead, or the job timed
  out on the API's side): the job is stopped and its result dropped, because another
  machine owns it now and a stale result would be rejected anyway.

The interval is whatever the API answers (0.5 s by default): the API decides how quickly
a silent machine is presumed dead, and the worker follows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tether.errors import TetherError
from tether.protocol import HeartbeatResponse
from tether.workers.executor import Executor, Stop
from tether.workers.registry import Registry
from tether.workers.results import ResultBatcher
from tether.workers.transport import MachineTransport, is_transient

log = logging.getLogger("tether.worker")

DEFAULT_INTERVAL = 0.5
# Seconds between full registrations (functions, schemas, meta); the beats in between
# only list held jobs, which is all the API needs to extend leases.
REGISTER_EVERY = 10.0


class Heartbeat:
    def __init__(
        self,
        transport: MachineTransport,
        registry: Registry,
        executor: Executor,
        results: ResultBatcher,
        *,
        max_jobs: int,
        meta: dict[str, Any],
    ) -> None:
        self.transport = transport
        self.registry = registry
        self.executor = executor
        self.results = results
        self.max_jobs = max_jobs
        self.meta = meta
        self.interval = DEFAULT_INTERVAL
        self.beats = 0
        self._failing = False
        self._registered_at: float | None = None

    def held(self) -> list[str]:
        return [*self.executor.running, *self.results.held()]

    async def beat(self) -> HeartbeatResponse:
        """One heartbeat; raises what the API answered, or ``ApiUnavailable``."""
        now = time.monotonic()
        full = self._registered_at is None or now - self._registered_at >= REGISTER_EVERY
        if full:
            reply = await self.transport.heartbeat(
                held=self.held(),
                functions=self.registry.specs,
                max_jobs=self.max_jobs,
                meta=self.meta,
            )
            self._registered_at = now
        else:
            reply = await self.transport.heartbeat(held=self.held())
        self.apply(reply)
        self.beats += 1
        return reply

    def apply(self, reply: HeartbeatResponse) -> None:
        if reply.heartbeat_interval > 0:
            self.interval = reply.heartbeat_interval
        for job_id in reply.cancel:
            self.executor.stop_job(job_id, Stop.CANCEL)  # the executor logs its end
        if reply.lost:
            # Leases lost wholesale usually mean the API presumed this machine dead and
            # forgot its registration: give it again with the next beat.
            self._registered_at = None
        for job_id in reply.lost:
            dropped = self.results.drop(job_id)
            # A running job logs its end in the executor; a finished one, here.
            if not self.executor.stop_job(job_id, Stop.LOST) and dropped:
                log.warning("job %s: lease lost; another machine runs it now", job_id)

    async def run(self) -> None:
        """Beat until cancelled, on a fixed cadence whatever each call takes."""
        next_at = time.monotonic() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = time.monotonic() + self.interval
            try:
                await self.beat()
            except TetherError as exc:
                level = logging.DEBUG if self._failing else logging.WARNING
                if not is_transient(exc):
                    level = logging.DEBUG if self._failing else logging.ERROR
                log.log(level, "heartbeat failed: %s", exc.message)
                self._failing = True
                self._registered_at = None  # the API may have forgotten us: say it all again
                continue
            if self._failing:
                log.info("heartbeats work again")
                self._failing = False
