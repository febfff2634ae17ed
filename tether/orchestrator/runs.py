"""The orchestrator's passes for workflow runs, plugged into ``Orchestrator.extra``.

- ``wake_timers``: runs whose sleep ended, whose approval or signal wait timed out, or
  whose retry backoff is over get their next activation;
- ``expire_runs``: runs past their workflow-level timeout fail (children cancelled);
- ``assign_versions``: runs started before any machine served their workflow get the
  newest version a live machine now serves;
- ``trim_index`` (every ``trim_every`` passes): ids of expired runs leave the runs index;
- ``unstick``: activations that waited for the machine keeping their run in memory
  longer than the sticky timeout go to their function's queue (any machine).

Each transition is one Lua script that re-checks the run's state, so any number of
orchestrators can run these passes at once: a run is woken once, never twice, and an
orchestrator killed mid-pass leaves the rest for the next pass. Runs whose children
finish, or that get an approval or a signal, are woken by those transitions themselves
(atomically), not by a pass, so nothing here waits on them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine, served_versions, trim_runs_index

log = logging.getLogger("tether.orchestrator")


Share = Callable[[], Sequence[int] | None]


def _everything() -> None:
    return None


class RunPasses:
    def __init__(
        self,
        engine: QueueEngine,
        batch: int = 1000,
        trim_every: int = 600,
        share: Share = _everything,
    ) -> None:
        self.engine = engine
        # The partitions this orchestrator works on now (None: every one).
        self.share = share
        self.runs = RunEngine(engine.redis, engine.config)
        self.batch = batch
        self.trim_every = trim_every  # passes between trims of the runs index
        self._passes = 0

    async def wake_timers(self) -> int:
        return await self.runs.wake_timers(self.batch, partitions=self.share())

    async def expire_runs(self) -> int:
        expired = await self.runs.expire_runs(self.batch, partitions=self.share())
        if expired:
            log.info("%d runs failed past their workflow timeout", expired)
        return expired

    async def trim_index(self) -> int:
        self._passes += 1
        if self._passes % self.trim_every:
            return 0
        return await trim_runs_index(self.runs, self.batch, partitions=self.share())

    async def unstick(self) -> int:
        return await self.engine.unstick(self.batch, partitions=self.share())

    async def assign_versions(self) -> int:
        waiting = await self.runs.unversioned(self.batch, partitions=self.share())
        if not waiting:
            return 0
        served = await served_versions(self.engine)
        assigned = 0
        for run_id, workflow in waiting:
            versions = served.get(workflow)
            if versions and await self.runs.assign_version(run_id, max(versions)):
                assigned += 1
        return assigned

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[int]]]]:
        return [
            ("run_timers", self.wake_timers),
            ("run_timeouts", self.expire_runs),
            ("run_versions", self.assign_versions),
            ("runs_trimmed", self.trim_index),
            ("activations_unstuck", self.unstick),
        ]


def run_passes(
    engine: QueueEngine, batch: int = 1000, share: Share = _everything
) -> list[tuple[str, Callable[[], Awaitable[int]]]]:
    """The passes ``Orchestrator`` adds to its job passes, on the partitions ``share()``
    names at each pass (every one by default)."""
    return RunPasses(engine, batch, share=share).tasks()
