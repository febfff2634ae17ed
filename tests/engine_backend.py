"""An activation reporting straight to a ``RunEngine``: in-process tests and the
benchmark's engine-only figure. Workers report over HTTP (``HttpBackend``); this does
what the API's machine endpoints do around the same engine calls, including the terms
its children get from the function registry (``child_terms``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.api.registry import FunctionRegistry, child_terms, workflow_versions
from tether.protocol import LeasedJob
from tether.queue.records import ErrorInfo
from tether.queue.runs import ActivationState, ChildSpec, Resume, RunEngine, Wait
from tether.workers.context import json_round_trip, refusals


class EngineBackend:
    """Reports to ``runs``. With a ``registry``, children are refused or given their
    function's registered terms as the API does; without, they start as asked."""

    def __init__(
        self,
        runs: RunEngine,
        job: LeasedJob,
        machine: str,
        registry: FunctionRegistry | None = None,
    ) -> None:
        self.runs = runs
        self.job = job
        self.machine = machine  # the machine the activation's job is leased to
        self._run_id = job.parent or ""
        self.registry = registry

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def job_id(self) -> str:
        return self.job.id

    async def begin(
        self,
        *,
        max_attempts: int,
        timeout_ms: int | None,
        resume: str | None = None,
        positions: Sequence[int] = (),
    ) -> ActivationState:
        with refusals():
            return await self.runs.begin(
                self.run_id,
                self.job.id,
                self.job.token,
                machine=self.machine,
                max_attempts=max_attempts,
                timeout_ms=timeout_ms,
                resume=resume,
                positions=positions,
            )

    async def record_step(
        self, position: int, record: dict[str, Any], logs: list[dict[str, Any]]
    ) -> None:
        with refusals():
            await self.runs.record_step(
                self.run_id,
                self.job.id,
                self.job.token,
                position,
                record,
                logs,
                machine=self.machine,
            )

    async def complete(self, result: Any, logs: list[dict[str, Any]]) -> str:
        # The engine stores plain JSON: a pydantic model or the like goes in as its JSON
        # form, as HttpBackend's encoder sends it.
        with refusals():
            return await self.runs.complete(
                self.run_id,
                self.job.id,
                self.job.token,
                json_round_trip(result),
                logs,
                machine=self.machine,
            )

    async def fail(
        self,
        error: dict[str, Any],
        *,
        resume: Resume | None,
        retryable: bool,
        logs: list[dict[str, Any]],
    ) -> str:
        with refusals():
            return await self.runs.fail(
                self.run_id,
                self.job.id,
                self.job.token,
                ErrorInfo(**error),
                machine=self.machine,
                resume=resume,
                retryable=retryable,
                logs=logs,
            )

    async def continue_as_new(self, input: Any, logs: list[dict[str, Any]]) -> str:
        with refusals():
            return await self.runs.continue_as_new(
                self.run_id,
                self.job.id,
                self.job.token,
                json_round_trip(input),
                logs,
                machine=self.machine,
            )

    async def suspend(
        self, wait: Wait, children: Sequence[ChildSpec], logs: list[dict[str, Any]]
    ) -> str:
        refused: dict[int, ErrorInfo] = {}
        if children and self.registry is not None:
            specs = await self.registry.get_many([c.function for c in children])
            # No heartbeats here: the newest registered version stands for "served".
            versions = await workflow_versions(self.registry, {})
            children, refused = child_terms(children, specs, versions)
        with refusals():
            return await self.runs.suspend(
                self.run_id,
                self.job.id,
                self.job.token,
                wait,
                children,
                logs,
                machine=self.machine,
                refused=refused,
            )
