"""``/v1/functions``: every function a machine has registered, who serves it now, and
how many of its jobs are waiting."""

from __future__ import annotations

from litestar import Controller, get

from tether.api.error_handlers import error_responses
from tether.api.services import Services
from tether.protocol import FunctionList, FunctionOut


class FunctionsController(Controller):
    path = "/v1/functions"
    tags = ["functions"]

    @get(
        "/",
        operation_id="listFunctions",
        responses=error_responses(),
        summary="Registered functions",
    )
    async def list_functions(self, services: Services) -> FunctionList:
        engine = services.engine
        functions = await services.registry.all()
        serving: dict[str, list[str]] = {}
        for machine in await engine.machines():
            for name in (machine.get("info") or {}).get("functions") or []:
                serving.setdefault(name, []).append(machine["id"])
        depths = await engine.queue_depths([fn.name for fn in functions])
        return FunctionList(
            functions=[
                FunctionOut(
                    name=fn.name,
                    kind=fn.kind,
                    input_schema=fn.input_schema,
                    machines=sorted(serving.get(fn.name, [])),
                    queued=queued,
                )
                for fn, queued in zip(functions, depths, strict=True)
            ]
        )
