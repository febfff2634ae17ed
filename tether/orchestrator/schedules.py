"""The orchestrator's pass for schedules, made by every replica (``Orchestrator.every_replica``).

``fire_schedules`` fires every due tick: one ``fire_schedule`` call per due schedule,
which starts the tick's job or run and moves the schedule on atomically, and only if no
other orchestrator did it first. Cost on a pass with nothing due: one ZRANGEBYSCORE.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tether.queue.engine import QueueEngine
from tether.queue.runs import served_versions
from tether.queue.schedules import ScheduleEngine

log = logging.getLogger("tether.orchestrator")


def schedule_passes(
    engine: QueueEngine, batch: int = 1000
) -> list[tuple[str, Callable[[], Awaitable[int]]]]:
    """The passes for ``Orchestrator.every_replica``."""
    schedules = ScheduleEngine(engine.redis, engine.config)

    async def versions() -> dict[str, set[int]]:
        return await served_versions(engine)

    async def fire_schedules() -> int:
        fired = await schedules.fire_due(batch, versions)
        for f in fired:
            if f.created:
                log.info("schedule %s started %s", f.name, f.id)
        return len(fired)

    return [("schedules", fire_schedules)]
