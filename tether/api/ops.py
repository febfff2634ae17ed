"""Operations: ``/healthz`` (is Redis reachable?) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get

from tether.api.error_handlers import error_responses
from tether.api.metrics import CONTENT_TYPE
from tether.api.services import Services
from tether.errors import RedisUnavailable
from tether.queue.redis_errors import redis_errors

HEALTH_TIMEOUT = 2.0  # seconds


class OpsController(Controller):
    path = "/"
    tags = ["operations"]

    @get(
        "/healthz",
        operation_id="health",
        responses=error_responses(),
        summary="200 when Redis answers a PING; 503 (error shape) when it does not",
    )
    async def health(self, services: Services) -> dict[str, Any]:
        try:
            with redis_errors():
                async with asyncio.timeout(HEALTH_TIMEOUT):
                    await services.redis.ping()
        except TimeoutError:
            raise RedisUnavailable(
                f"Redis did not answer a PING within {HEALTH_TIMEOUT:g} s",
                details={"timeout": HEALTH_TIMEOUT},
            ) from None
        return {"status": "ok", "redis": "ok", "notifications": services.notifier.connected}

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics of this API process",
        media_type=CONTENT_TYPE,
    )
    async def metrics(self, services: Services) -> Response[str]:
        s = services
        text = await s.metrics.render(s.engine, s.registry, s.notifier)
        return Response(text, media_type=CONTENT_TYPE)
