"""``/v1/functions``: every function a machine has registered, who serves it now, and
how many of its jobs are waiting."""

from __future__ import annotations

from litestar import Controller, get

from tether.api.error_handlers import error_responses
from tether.api.services import Services
from tether.protocol import FunctionList, FunctionOut
from tether.queue.redis_errors import redis_errors


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
        engine, redis = services.engine, services.redis
        functions = await services.registry.all()
        serving: dict[str, list[str]] = {}
        for machine in await engine.machines():
            for name in (machine.get("info") or {}).get("functions") or []:
                serving.setdefault(name, []).append(machine["id"])
        partitions = engine.keys.all_partitions()
        with redis_errors():
            async with redis.pipeline(transaction=False) as pipe:
                for fn in functions:
                    for pk in partitions:
                        pipe.xlen(pk.ready(fn.name))
                depths = await pipe.execute()
        n = len(partitions)
        return FunctionList(
            functions=[
                FunctionOut(
                    name=fn.name,
                    kind=fn.kind,
                    input_schema=fn.input_schema,
                    machines=sorted(serving.get(fn.name, [])),
                    queued=sum(int(d) for d in depths[i * n : (i + 1) * n]),
                )
                for i, fn in enumerate(functions)
            ]
        )
