"""``/v1/schedules``: cron and interval schedules that start jobs or workflow runs.

Ticks are fired by the orchestrator (tether/orchestrator/schedules.py); these routes
declare, read, pause, resume, trigger and delete schedules. Each change is one Lua
transition (tether/queue/schedules.py).
"""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import Scope

from tether.api.auth import SCOPE_SERVICES
from tether.api.error_handlers import also_ok, change_error_responses, error_responses
from tether.api.params import MachineId, ScheduleName
from tether.api.registry import FunctionRegistry
from tether.api.responses import JsonResponse
from tether.api.services import Services
from tether.errors import Conflict, NotFound, ValidationFailed
from tether.protocol import (
    MachineSchedules,
    ScheduleCreate,
    ScheduleDeleted,
    ScheduleFired,
    ScheduleList,
    ScheduleOut,
    ScheduleTrigger,
    ms_to_datetime,
)
from tether.queue.engine import QueueEngine
from tether.queue.runs import served_versions
from tether.queue.schedules import ScheduleDef, ScheduleEngine, ScheduleRecord


def provide_schedules(state: State, scope: Scope) -> ScheduleEngine:
    """One per app and namespace, on that namespace's pool and keys (built at first use)."""
    services: Services = scope[SCOPE_SERVICES]  # type: ignore[literal-required]
    by_namespace: dict[str, ScheduleEngine] | None = state.get("schedules")
    if by_namespace is None:
        by_namespace = state.schedules = {}
    schedules = by_namespace.get(services.namespace)
    if schedules is None:
        engine = services.engine
        schedules = by_namespace[services.namespace] = ScheduleEngine(engine.redis, engine.config)
    return schedules


def schedule_out(r: ScheduleRecord) -> ScheduleOut:
    d = r.definition
    return ScheduleOut(
        name=d.name,
        function=d.target if d.kind == "job" else None,
        workflow=d.target if d.kind == "run" else None,
        input=d.input,
        cron=d.cron,
        every=d.every_ms / 1000 if d.every_ms is not None else None,
        timezone=d.timezone,
        misfire=d.misfire,
        grace=d.grace_ms / 1000,
        max_attempts=d.max_attempts,
        timeout=d.timeout_ms / 1000 if d.timeout_ms else None,
        paused=r.paused,
        next_fire=ms_to_datetime(r.next_fire),
        last_tick=ms_to_datetime(r.last_tick),
        last_id=r.last_id,
        last_fired_at=ms_to_datetime(r.last_fired_at),
        fired=r.fired,
        missed=r.missed,
        source=r.source,
        created_at=ms_to_datetime(r.created_at),
        updated_at=ms_to_datetime(r.updated_at),
    )


async def _definition(data: ScheduleCreate, registry: FunctionRegistry) -> ScheduleDef:
    if (data.function is None) == (data.workflow is None):
        raise ValidationFailed(
            "a schedule starts exactly one of function and workflow",
            details={"field": "function"},
        )
    timeout_ms = round(data.timeout * 1000) if data.timeout is not None else None
    max_attempts = data.max_attempts
    if data.function is not None:
        # A job without its own limits takes those its function registered, as POST
        # /v1/jobs does; a function no machine serves yet is fine (its jobs wait).
        spec = await registry.get(data.function)
        if spec is not None:
            max_attempts = max_attempts or spec.max_attempts
            if timeout_ms is None and spec.timeout is not None:
                timeout_ms = round(spec.timeout * 1000)
    return ScheduleDef(
        name=data.name,
        kind="job" if data.function is not None else "run",
        target=data.function or data.workflow or "",
        input=data.input,
        cron=data.cron,
        every_ms=round(data.every * 1000) if data.every is not None else None,
        timezone=data.timezone,
        misfire=data.misfire,
        grace_ms=round(data.grace * 1000),
        max_attempts=max_attempts,
        timeout_ms=timeout_ms,
    )


class MachineSchedulesController(Controller):
    """A worker puts its ``cron_jobs`` with its machine key (a machine may not call the
    app's schedule routes): only schedules of jobs of a function of the schedule's own
    name, never one an app declared."""

    path = "/v1/machines"
    tags = ["machines"]
    # Not "schedules": a dependency named like a body field made a bad body a 500.
    dependencies = {"schedule_engine": Provide(provide_schedules, sync_to_thread=False)}

    @post(
        "/{machine_id:str}/schedules",
        operation_id="putMachineSchedules",
        responses=change_error_responses(409),
        status_code=200,
        summary="A worker's cron jobs, put as schedules (unchanged ones stay as they are)",
    )
    async def put_machine_schedules(
        self,
        machine_id: MachineId,
        data: MachineSchedules,
        schedule_engine: ScheduleEngine,
        registry: FunctionRegistry,
    ) -> ScheduleList:
        put: list[ScheduleOut] = []
        for item in data.schedules:
            if item.function != item.name or item.workflow is not None:
                raise ValidationFailed(
                    "a worker's schedule starts jobs of the function of its own name",
                    details={"field": "schedules", "name": item.name},
                )
            try:
                existing = await schedule_engine.get(item.name)
            except NotFound:
                existing = None
            if existing is not None and existing.source != "worker":
                raise Conflict(
                    f"schedule {item.name} was declared through the API: a worker may not "
                    "redefine it",
                    details={"name": item.name},
                )
            definition = await _definition(item, registry)
            record, _ = await schedule_engine.put(definition, source="worker")
            put.append(schedule_out(record))
        names = {item.name for item in data.schedules}
        for name in data.trigger:
            if name not in names:
                raise ValidationFailed(
                    f"trigger names {name!r}, which is not among the schedules put",
                    details={"field": "trigger", "name": name},
                )
            await schedule_engine.trigger(name)
        return ScheduleList(schedules=put)


class SchedulesController(Controller):
    path = "/v1/schedules"
    tags = ["schedules"]
    dependencies = {"schedules": Provide(provide_schedules, sync_to_thread=False)}

    @post(
        "/",
        operation_id="putSchedule",
        responses=change_error_responses()
        | also_ok(ScheduleOut, "The schedule of this name, redefined or left as it was"),
        summary="Create a schedule (201), or redefine the one of this name (200)",
    )
    async def put_schedule(
        self, data: ScheduleCreate, schedules: ScheduleEngine, registry: FunctionRegistry
    ) -> JsonResponse[ScheduleOut]:
        definition = await _definition(data, registry)
        record, created = await schedules.put(definition, paused=data.paused, source=data.source)
        return JsonResponse(schedule_out(record), status_code=201 if created else 200)

    @get("/", operation_id="listSchedules", responses=error_responses(), summary="Schedules")
    async def list_schedules(self, schedules: ScheduleEngine) -> ScheduleList:
        return ScheduleList(schedules=[schedule_out(r) for r in await schedules.list_schedules()])

    @get(
        "/{name:str}",
        operation_id="getSchedule",
        responses=error_responses(404),
        summary="A schedule",
    )
    async def get_schedule(self, name: ScheduleName, schedules: ScheduleEngine) -> ScheduleOut:
        return schedule_out(await schedules.get(name))

    @post(
        "/{name:str}/pause",
        operation_id="pauseSchedule",
        responses=change_error_responses(404),
        status_code=200,
        summary="Stop firing its ticks (a trigger still starts it)",
    )
    async def pause_schedule(self, name: ScheduleName, schedules: ScheduleEngine) -> ScheduleOut:
        return schedule_out(await schedules.pause(name))

    @post(
        "/{name:str}/resume",
        operation_id="resumeSchedule",
        responses=change_error_responses(404, 409),
        status_code=200,
        summary="Fire its ticks again, from the first one after now",
    )
    async def resume_schedule(self, name: ScheduleName, schedules: ScheduleEngine) -> ScheduleOut:
        return schedule_out(await schedules.resume(name))

    @post(
        "/{name:str}/trigger",
        operation_id="triggerSchedule",
        responses=change_error_responses(404)
        | also_ok(ScheduleFired, "What its key had started already"),
        summary="Start its job or run now (201), or the one its key started (200)",
    )
    async def trigger_schedule(
        self,
        name: ScheduleName,
        schedules: ScheduleEngine,
        engine: QueueEngine,
        data: ScheduleTrigger | None = None,
    ) -> JsonResponse[ScheduleFired]:
        async def versions() -> dict[str, set[int]]:
            return await served_versions(engine)

        key = data.key if data is not None else None
        fired = await schedules.trigger(name, key=key, versions=versions)
        record = await schedules.get(name)
        body = ScheduleFired(
            name=name, id=fired.id, kind=record.definition.kind, created=fired.created
        )
        return JsonResponse(body, status_code=201 if fired.created else 200)

    @delete(
        "/{name:str}",
        operation_id="deleteSchedule",
        status_code=200,
        responses=change_error_responses(404),
        summary="Delete a schedule (what it started is left as it is)",
    )
    async def delete_schedule(
        self, name: ScheduleName, schedules: ScheduleEngine
    ) -> ScheduleDeleted:
        # 200 with a body rather than 204: every answer of the API is JSON.
        await schedules.delete(name)
        return ScheduleDeleted(name=name, deleted=True)
