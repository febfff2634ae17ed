"""The long-poll loop: always one poll in flight while the worker has room.

Each poll asks for ``max_jobs - in_flight`` jobs, so the machine never holds more than
``max_jobs`` at once; the API answers as soon as any job is ready (or after ``wait``
seconds with none). A full worker does not poll at all until a job finishes. When the
API is unreachable the loop backs off with jitter and carries on when it returns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

from tether.errors import TetherError
from tether.protocol import LeasedJob
from tether.workers.executor import Executor
from tether.workers.transport import Backoff, MachineTransport, retrying

log = logging.getLogger("tether.worker")


class Poller:
    def __init__(
        self,
        transport: MachineTransport,
        executor: Executor,
        functions: Sequence[str],
        *,
        wait: float,
    ) -> None:
        self.transport = transport
        self.executor = executor
        self.functions = list(functions)
        self.wait = wait
        self.polls = 0
        self.received = 0

    async def _poll(self, want: int) -> list[LeasedJob]:
        return await self.transport.poll(self.functions, want, self.wait)

    async def run(self) -> None:
        """Poll until cancelled."""
        refused = Backoff(base=0.5, cap=30.0)
        while True:
            want = self.executor.capacity
            if want <= 0:
                await self.executor.wait_for_room()
                continue
            try:
                jobs = await retrying(functools.partial(self._poll, want), what="polling")
            except TetherError as exc:
                # Refused for good (a 4xx): nothing to fix by retrying at once, but the
                # operator may fix the API; keep trying, slowly and loudly.
                delay = refused.next_delay()
                log.error("poll refused, retrying in %.1fs: %s", delay, exc.message)
                await asyncio.sleep(delay)
                continue
            refused.reset()
            self.polls += 1
            self.received += len(jobs)
            for job in jobs:
                self.executor.start(job)
            if jobs:
                # Two loop steps before building the next poll: quick jobs finish in the
                # first, the result batcher sends in the second. A caller waits for a
                # result; the next poll would only wait for work.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
