"""The API replica's sign of life in Redis, for the orchestrator.

Machines are heard only through an API replica. If every replica is down, no heartbeat
can arrive, and a machine's silence then says nothing about the machine: the orchestrator
reads these signs (the newest of all replicas) and does not count such a silence against
anyone (``QueueEngine.plane_pass``, lua/plane_pass.lua).

One task per process writes the replica's record every quarter of ``plane_gap_ms``
(0.25 s by default): one tiny script per partition in one round trip, whatever the
traffic. Requests never write it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from tether.errors import TetherError
from tether.queue.engine import QueueEngine

log = logging.getLogger("tether.api.liveness")


def replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Liveness:
    def __init__(
        self,
        engine: QueueEngine,
        replica: str | None = None,
        *,
        engines: Callable[[], Awaitable[list[QueueEngine]]] | None = None,
    ) -> None:
        self.engine = engine
        # Namespaces: the sign goes into every namespace's keys (``engines`` lists their
        # engines), since each namespace's orchestrator loop reads its own.
        self._engines = engines
        self.replica = replica or replica_id()
        self.interval = engine.config.plane_gap_ms / 4000
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._beat(), name="tether-api-liveness")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _beat(self) -> None:
        while True:
            try:
                for engine in await self._engines() if self._engines else [self.engine]:
                    await engine.api_alive(self.replica)
            except TetherError as exc:  # Redis is away: the orchestrator sees the gap
                log.debug("could not record this replica's sign of life: %s", exc)
            await asyncio.sleep(self.interval)
