"""Sticky replay: runs kept suspended in a worker's memory between activations.

A workflow that waits (a sleep, children, an approval, a signal) normally unwinds, and
its next activation replays it from the top against its whole history: the cost of an
activation grows with the run. A worker with room keeps the run's code suspended in its
``await`` instead (a ``Parked`` run: the task running the code, and its replay state).
When the run's next activation reaches the same machine, ``begin`` names the
activation after which it was parked and the positions it waits on; the control plane
answers with only those records if nothing else happened to the run since (no other
machine began an activation, no retry rewrote the history: ``begin_activation.lua``),
and the code simply goes on. Any other answer (the whole history) means the kept state
is stale: it is let go of (``Evicted`` unwinds it, recording nothing) and the run
replays in full, as it does on any other machine.

The cache is bounded (``WorkerSettings.max_cached_runs``, least recently parked out
first); a worker that stops lets go of every run it keeps. Nothing here is needed for
correctness: a run is always resumable from its history alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from tether.limits import MAX_STICKY_POSITIONS
from tether.protocol import ChildrenWait, Wait
from tether.workers.context import Evicted, WorkflowContext

log = logging.getLogger("tether.workflow")


def wait_positions(wait: Wait) -> tuple[int, ...]:
    """The positions whose records end ``wait``: what a resumed run needs to know."""
    if isinstance(wait, ChildrenWait):
        return wait.positions
    return (wait.position,)


@dataclass(slots=True)
class Parked:
    """A run's code suspended in a wait, after activation ``job_id`` reported it."""

    run_id: str
    function: str  # wf:<name>@<version>: only an activation of the same one resumes it
    job_id: str
    positions: tuple[int, ...]
    task: asyncio.Task[Any]
    ctx: WorkflowContext  # its replay state is the runner's (ctx._replay)

    def let_go(self) -> None:
        """Unwind the code (its ``finally`` blocks run; nothing is recorded)."""
        replay = self.ctx._replay
        replay.evicted = True
        resumed = replay.resumed
        if resumed is not None and not resumed.done():
            resumed.set_exception(Evicted(f"run {self.run_id} is no longer kept here"))


class RunCache:
    """Parked runs by run id, at most ``size`` (0: none is kept)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._runs: OrderedDict[str, Parked] = OrderedDict()
        self._unwinding: set[asyncio.Task[Any]] = set()
        self.hits = 0  # activations that went on from memory
        self.misses = 0  # activations of a kept run that replayed in full (stale)
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def keeps(self, positions: tuple[int, ...]) -> bool:
        """Whether a run waiting on ``positions`` would be kept."""
        return self.size > 0 and len(positions) <= MAX_STICKY_POSITIONS

    def take(self, run_id: str, function: str) -> Parked | None:
        """The run kept for an activation of ``function``, out of the cache (the
        activation owns it now); one kept for another version is let go of."""
        parked = self._runs.pop(run_id, None)
        if parked is not None and parked.function != function:
            self.let_go(parked)
            return None
        return parked

    def put(self, parked: Parked) -> None:
        old = self._runs.pop(parked.run_id, None)
        if old is not None:
            self.let_go(old)
        self._runs[parked.run_id] = parked
        while len(self._runs) > self.size:
            _, oldest = self._runs.popitem(last=False)
            self.let_go(oldest)

    def discard(self, parked: Parked) -> None:
        """Let go of ``parked`` if the cache still holds it (nobody took it)."""
        if self._runs.get(parked.run_id) is parked:
            del self._runs[parked.run_id]
            self.let_go(parked)

    def let_go(self, parked: Parked) -> None:
        self.evictions += 1
        parked.let_go()
        # Keep a reference until the code has unwound (a task may be collected otherwise).
        self._unwinding.add(parked.task)
        parked.task.add_done_callback(self._unwinding.discard)

    async def close(self, timeout: float = 5.0) -> None:
        """Let go of every kept run and give their code ``timeout`` s to unwind."""
        while self._runs:
            _, parked = self._runs.popitem()
            self.let_go(parked)
        if self._unwinding:
            tasks = list(self._unwinding)
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*pending, return_exceptions=True)
