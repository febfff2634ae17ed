"""In-process machine for workflow tests: the real Lua transitions on a real Redis, with
a tiny machine loop in the test's own event loop (no HTTP, no processes)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine_backend import EngineBackend

from tether.api.registry import FunctionRegistry
from tether.protocol import FunctionSpec, LeasedJob
from tether.queue.engine import QueueEngine
from tether.queue.records import ClaimedJob, ErrorInfo
from tether.queue.runs import RunEngine, RunRecord
from tether.workers.sticky import RunCache
from tether.workers.workflow import Workflow, run_activation


def leased(job: ClaimedJob) -> LeasedJob:
    return LeasedJob(
        id=job.id,
        function=job.function,
        input=job.input,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        token=job.token,
        timeout=None,
        parent=job.parent,
    )


@dataclass
class Machine:
    """Claims and runs activations of ``workflows`` and jobs of ``functions``, which it
    registers first (as a worker's first heartbeat does), with ``specs`` as their terms."""

    engine: QueueEngine
    runs: RunEngine
    workflows: Sequence[Workflow] = ()
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    name: str = "m1"
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    known: Sequence[str] = ()  # functions other machines serve: registered, not run here
    registered: bool = False
    cache: RunCache | None = None  # runs kept in memory between activations (sticky replay)

    @property
    def registry(self) -> FunctionRegistry:
        return FunctionRegistry(self.engine.redis, self.engine.config.keys, refresh=0)

    async def register(self, *names: str, **terms: Any) -> None:
        """Register functions (``names``, else those it serves) as a heartbeat would."""
        await self.registry.register(
            [
                FunctionSpec(name=n, **{**self.specs.get(n, {}), **terms})
                for n in names or [*self.serves, *self.known]
            ]
        )

    @property
    def serves(self) -> list[str]:
        return [w.function for w in self.workflows] + list(self.functions)

    async def claim(self) -> list[ClaimedJob]:
        if not self.registered:
            await self.register()
            self.registered = True
        return await self.engine.claim(self.name, self.serves, 100)

    async def run_job(self, job: ClaimedJob) -> None:
        wf = next((w for w in self.workflows if w.function == job.function), None)
        if wf is not None:
            backend = EngineBackend(self.runs, leased(job), job.machine, self.registry)
            summary = await run_activation(wf, backend, cache=self.cache)
            await self.engine.complete(job.id, job.token, summary, machine=job.machine)
            return
        fn = self.functions[job.function]
        try:
            value = fn(job.input)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            await self.engine.fail(
                job.id,
                job.token,
                ErrorInfo(type=type(exc).__name__, message=str(exc)),
                retryable=False,
                machine=job.machine,
            )
            return
        await self.engine.complete(job.id, job.token, value, machine=job.machine)

    async def turn(self) -> int:
        """Claim what is ready and run it all; returns how many jobs ran."""
        jobs = await self.claim()
        for job in jobs:
            await self.run_job(job)
        return len(jobs)

    async def drain(self, run_id: str, max_turns: int = 50) -> RunRecord:
        """Turn until nothing is ready; returns the run as it is then."""
        for _ in range(max_turns):
            if await self.turn() == 0:
                break
        return await self.runs.get(run_id)
