"""``/v1/machines``: what worker processes call (heartbeat, poll, results), and the list
of live machines.

These are the hot paths: each handler is one Redis round trip in the common case, and
poll and results answer plain data shaped as their declared models (``shaped_as``): the
values come from our own scripts, and building models only to dump them costs time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post

from tether.api.auth import principal_of
from tether.api.error_handlers import change_error_responses, error_responses
from tether.api.logs import check_lines, ingest
from tether.api.params import MachineId
from tether.api.polling import poll_jobs
from tether.api.responses import JsonResponse, shaped_as
from tether.api.services import Services
from tether.errors import RegistryFull
from tether.protocol import (
    DeregisterResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    MachineList,
    MachineOut,
    PollRequest,
    PollResponse,
    ResultsRequest,
    ResultsResponse,
    ms_to_datetime,
)
from tether.queue.records import Outcome, Verdict


class MachinesController(Controller):
    path = "/v1/machines"
    tags = ["machines"]

    @post(
        "/{machine_id:str}/heartbeat",
        operation_id="heartbeat",
        responses=change_error_responses(409),
        status_code=200,
        summary="Register functions, extend every lease held, learn of cancellations",
    )
    async def heartbeat(
        self,
        machine_id: MachineId,
        data: HeartbeatRequest,
        request: Request[Any, Any, Any],
        services: Services,
    ) -> HeartbeatResponse:
        engine = services.engine
        if data.functions:
            principal_of(request).check_functions(f.name for f in data.functions)
        info: dict[str, Any] | None = None
        # An empty heartbeat only extends leases; the registration it made stays.
        if data.functions or data.meta or data.max_jobs is not None:
            info = {
                "functions": [f.name for f in data.functions],
                "kinds": {f.name: f.kind for f in data.functions},
                "max_jobs": data.max_jobs,
                "meta": data.meta,
            }
        full: RegistryFull | None = None
        if data.functions:
            try:
                await services.registry.register(data.functions)
            except RegistryFull as exc:
                # The machine is alive and its leases go on all the same (its jobs must not
                # go elsewhere because the registry is full); only the new names are not
                # registered, and the machine is told so.
                full, info = exc, None
        reply = await engine.heartbeat(machine_id, info, data.held)
        if full is not None:
            raise full
        ttl = engine.config.lease_ttl_ms / 1000
        return HeartbeatResponse.model_construct(
            cancel=reply.cancelled,
            lost=reply.lost,
            heartbeat_interval=ttl / 4,
            lease_ttl=ttl,
        )

    @post(
        "/{machine_id:str}/poll",
        operation_id="poll",
        responses=change_error_responses(),
        status_code=200,
        summary="Long poll: lease up to max_jobs jobs, waiting up to `wait` seconds",
    )
    async def poll(
        self,
        machine_id: MachineId,
        data: PollRequest,
        request: Request[Any, Any, Any],
        services: Services,
    ) -> JsonResponse[PollResponse]:
        principal_of(request).check_functions(data.functions)
        jobs = await poll_jobs(
            services.engine,
            services.notifier,
            machine_id,
            data.functions,
            data.max_jobs,
            data.wait,
            request.receive,
        )
        return shaped_as(
            PollResponse,
            {
                "jobs": [
                    {
                        "id": j.id,
                        "function": j.function,
                        "input": j.input,
                        "attempt": j.attempt,
                        "max_attempts": j.max_attempts,
                        "token": j.token,
                        "timeout": j.timeout_ms / 1000 if j.timeout_ms > 0 else None,
                        "parent": j.parent,
                        "enqueued_at": j.enqueued_ms / 1000 if j.enqueued_ms else None,
                        "trace": j.trace,
                    }
                    for j in jobs
                ]
            },
        )

    @post(
        "/{machine_id:str}/results",
        operation_id="reportResults",
        responses=change_error_responses(),
        status_code=200,
        summary="Report a batch of results; each is accepted or rejected on its own",
    )
    async def results(
        self,
        machine_id: MachineId,
        data: ResultsRequest,
        services: Services,
    ) -> JsonResponse[ResultsResponse]:
        engine, metrics = services.engine, services.metrics
        if data.logs:
            # First: a job's lines are stored before its end is (followers stop there).
            check_lines(sum(len(b.lines) for b in data.logs))
            await ingest(services, machine_id, data.logs)
        outcomes: list[Outcome] = []
        reported: list[int] = []  # index in the request of each outcome
        released: list[int] = []
        for i, item in enumerate(data.results):
            if item.status == "released":
                released.append(i)
                continue
            outcomes.append(
                Outcome(
                    job_id=item.id,
                    token=item.token,
                    ok=item.status == "completed",
                    result=item.result,
                    error=item.error,
                    retryable=item.retryable,
                    retry_in_ms=round(item.retry_in * 1000) if item.retry_in is not None else None,
                )
            )
            reported.append(i)
        verdicts: dict[int, Verdict] = {}  # index in the request -> its verdict
        if outcomes:
            for i, verdict in zip(
                reported, await engine.report(outcomes, machine=machine_id), strict=True
            ):
                verdicts[i] = verdict
        if released:
            leases = [(data.results[i].id, data.results[i].token) for i in released]
            handed_back = await engine.release_many(leases, machine=machine_id)
            for i, verdict in zip(released, handed_back, strict=True):
                verdicts[i] = verdict
        out: list[dict[str, Any]] = []
        finished: list[tuple[str, str]] = []  # (job id, status after) for the metrics
        for i in range(len(data.results)):
            v = verdicts[i]  # each item was reported or released above
            if not v.accepted:
                metrics.results_rejected += 1
            elif data.results[i].status == "completed":
                metrics.jobs_completed += 1
                finished.append((v.job_id, v.status))
            elif data.results[i].status == "failed":
                metrics.jobs_failed += 1
                finished.append((v.job_id, v.status))
            out.append(
                {"id": v.job_id, "accepted": v.accepted, "status": v.status, "reason": v.reason}
            )
        if finished:
            metrics.outcomes.add(engine, finished)
        return shaped_as(ResultsResponse, {"results": out})

    @post(
        "/{machine_id:str}/deregister",
        operation_id="deregister",
        responses=change_error_responses(),
        status_code=200,
        summary="A machine leaves: off the live list at once, leases it still holds released",
    )
    async def deregister(self, machine_id: MachineId, services: Services) -> DeregisterResponse:
        # A worker's goodbye on a graceful stop, after it delivered every result: without
        # it the orchestrator would declare the machine dead a few seconds later.
        released = await services.engine.machine_dead(machine_id, None) or []
        return DeregisterResponse(released=released)

    @get("/", operation_id="listMachines", responses=error_responses(), summary="Live machines")
    async def list_machines(self, services: Services) -> MachineList:
        machines = []
        for m in await services.engine.machines():
            info = m.get("info") or {}
            machines.append(
                MachineOut(
                    id=m["id"],
                    last_heartbeat=datetime.fromtimestamp(m["last_heartbeat_ms"] / 1000, UTC),
                    first_seen=ms_to_datetime(m["first_seen_ms"]),
                    jobs=m["jobs"],
                    functions=list(info.get("functions") or []),
                    meta=dict(info.get("meta") or {}),
                )
            )
        return MachineList(machines=machines)
