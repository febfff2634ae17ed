"""``/v1/limits/{function}``: a function's concurrency and rate limits
(docs/queue-features.md). Admins set them; anyone who may read jobs may read them.

Limits are the deployment's (per namespace), not a worker's: two workers registering
different numbers for one function would make the limit whichever spoke last, so they
are set here, once, and every claim of every machine obeys them.
"""

from __future__ import annotations

from litestar import Controller, delete, get, put

from tether.api.error_handlers import change_error_responses, error_responses
from tether.api.params import FunctionName
from tether.api.services import Services
from tether.protocol import FunctionLimits, FunctionLimitsOut


def _out(function: str, limits: FunctionLimits) -> FunctionLimitsOut:
    return FunctionLimitsOut(function=function, **limits.model_dump())


class LimitsController(Controller):
    path = "/v1/limits"
    tags = ["limits"]

    @put(
        "/{function:str}",
        operation_id="putLimits",
        responses=change_error_responses(),
        summary="Set a function's concurrency and rate limits (a field left out: no limit)",
    )
    async def put_limits(
        self, function: FunctionName, data: FunctionLimits, services: Services
    ) -> FunctionLimitsOut:
        await services.engine.set_limits(function, data)
        return _out(function, data)

    @get(
        "/{function:str}",
        operation_id="getLimits",
        responses=error_responses(),
        summary="A function's limits (all null: none)",
    )
    async def get_limits(self, function: FunctionName, services: Services) -> FunctionLimitsOut:
        return _out(function, await services.engine.get_limits(function))

    @delete(
        "/{function:str}",
        operation_id="deleteLimits",
        status_code=200,
        responses=change_error_responses(),
        summary="Clear a function's limits (jobs running keep their slots until they end)",
    )
    async def delete_limits(self, function: FunctionName, services: Services) -> FunctionLimitsOut:
        await services.engine.set_limits(function, None)
        return _out(function, FunctionLimits())
