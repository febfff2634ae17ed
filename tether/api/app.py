"""The Litestar application: ``create_app(settings)``.

Redis is opened in the lifespan: one bounded pool shared by every request (long polls
hold no connection while they wait) and one connection of its own for the notification
subscription. Every request is authenticated and authorized before its body is read
(``auth.Gate``, the ``before_request`` hook, by the table in ``access.py``); what
handlers need reaches them through dependency injection, from the services of the
caller's namespace (see ``deps.py``); every error leaves in one shape
(``error_handlers.py``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.pydantic import PydanticPlugin
from litestar.types import Message, Scope

from tether import tracing
from tether.api.auth import SCOPE_SERVICES, Authenticator, Gate
from tether.api.browsers import browser_guard
from tether.api.deps import DEPENDENCIES
from tether.api.error_handlers import EXCEPTION_HANDLERS
from tether.api.events import EventHub
from tether.api.latency import latency_middleware
from tether.api.liveness import Liveness
from tether.api.metrics import Metrics
from tether.api.notify import Notifier
from tether.api.responses import JsonResponse
from tether.api.routes import ROUTE_HANDLERS
from tether.api.services import Services
from tether.api.settings import ApiSettings
from tether.api.tenants import Tenants
from tether.errors import TetherError
from tether.queue.apikeys import KeyStore
from tether.queue.engine import QueueEngine
from tether.queue.redis_py import Client, close_client, pooled_client, redis_client

API_VERSION = "1.0.0"

log = logging.getLogger("tether.api")


def _redis_clients(settings: ApiSettings) -> tuple[Client, Client]:
    redis = pooled_client(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
        durability=settings.redis_durability(),
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        client_name=settings.client_name,
    )
    # The notifier makes its one subscription connection from this client's settings
    # (address, credentials, TLS); it watches that connection's health itself.
    subscriber = redis_client(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        max_connections=1,
        client_name=f"{settings.client_name}-notify",
    )
    return redis, subscriber


NAMESPACES_EVERY = 5.0  # seconds between reads of the namespaces set, for liveness


def namespaced_engines(
    tenants: Tenants, authenticator: Authenticator
) -> Callable[[], Awaitable[list[QueueEngine]]]:
    """The engines of every namespace a key was made for (the set re-read every
    ``NAMESPACES_EVERY`` seconds), for the replica's sign of life."""
    known: list[str] = ["default"]
    read_at = -NAMESPACES_EVERY

    async def engines() -> list[QueueEngine]:
        nonlocal known, read_at
        now = time.monotonic()
        if now - read_at >= NAMESPACES_EVERY:
            read_at = now
            known = await authenticator.store.namespaces()
        return [tenants.get(ns).engine for ns in known]

    return engines


def _cors(settings: ApiSettings) -> CORSConfig | None:
    """CORS for the configured origins only; none configured, none answered."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "authorization"],
        allow_credentials=False,  # no cookies: nothing ambient may authenticate
        max_age=600,
    )


def create_app(settings: ApiSettings | None = None) -> Litestar:
    """The tether API for ``settings`` (default: from ``TETHER_*`` environment)."""
    settings = settings or ApiSettings.from_env()
    config = settings.queue_config()
    tracing.setup("tether-api")  # spans only if OTEL_TRACES_EXPORTER asks for them
    metrics = Metrics()
    events = EventHub(settings.events_max_clients, settings.events_queue, settings.events_heartbeat)
    metrics.event_stats = events.stats
    gate = Gate()

    @asynccontextmanager
    async def redis_lifespan(app: Litestar) -> AsyncIterator[None]:
        redis, subscriber = _redis_clients(settings)
        if not settings.auth:
            log.warning(
                "UNSAFE: authentication is off (--no-auth): anyone who can reach this API "
                "can run, read, cancel and approve anything"
            )
        notifier = Notifier(
            subscriber,
            redis,
            config.keys,
            recheck_interval=settings.recheck_interval,
            claim_concurrency=max(1, settings.redis_max_connections // 2),
        )
        tenants = Tenants(settings, redis, config, notifier, metrics)
        authenticator = Authenticator(KeyStore(redis, config.keys), enabled=settings.auth)
        gate.tenants, gate.authenticator = tenants, authenticator
        app.state.tenants = tenants
        app.state.authenticator = authenticator
        app.state.services = tenants.default
        # Tests reach these directly; handlers get them through `services`.
        app.state.redis = redis
        app.state.engine = tenants.default.engine
        app.state.notifier = notifier
        liveness = Liveness(
            tenants.default.engine, engines=namespaced_engines(tenants, authenticator)
        )
        # Loaded before the first request, so that no batch meets a missing script (the
        # API starts while Redis is away too: NOSCRIPT reloads them later).
        with contextlib.suppress(TetherError):
            await tenants.default.engine.load_scripts()
        await notifier.start()
        await liveness.start()
        try:
            yield
        finally:
            events.close()
            await liveness.stop()
            await notifier.stop()
            await metrics.outcomes.close()
            await subscriber.aclose()
            await close_client(redis)

    async def count_response(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            route = scope.get("path_template") or "unmatched"
            services = scope.get(SCOPE_SERVICES)
            counted = services.metrics if isinstance(services, Services) else metrics
            counted.count_request(str(scope.get("method", "")), route, message["status"])
            counted.observe_latency(scope, route)

    return Litestar(
        route_handlers=list(ROUTE_HANDLERS),
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[redis_lifespan],
        before_send=[count_response],
        before_request=gate,
        # Every route: JSON bodies only, no state change from a foreign origin (CSRF).
        middleware=[latency_middleware, browser_guard(settings.cors_origins)],
        cors_config=_cors(settings),
        # Strict validation of every request body: "5" or true is not a number, 0 is not
        # a flag (pydantic would convert them otherwise: Litestar asks for lax by default).
        plugins=[PydanticPlugin(validate_strict=True)],
        response_class=JsonResponse,
        request_max_body_size=settings.max_body_size,
        state=State(
            {
                "settings": settings,
                "metrics": metrics,
                "events": events,
                "max_body_size": settings.max_body_size,
            }
        ),
        openapi_config=OpenAPIConfig(
            title="tether",
            version=API_VERSION,
            description="The v1 HTTP API of the tether control plane.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
            # Every route but /healthz and /schema wants `Authorization: Bearer <key>`
            # (docs/security.md); the scheme is described, not required per operation,
            # so a generated request without it is not taken for invalid data.
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="an API key, tk_...: every route but /healthz needs one",
                    )
                }
            ),
        ),
        debug=False,
    )


def app_from_env(**_: Any) -> Litestar:
    """An app configured from the environment (for ``uvicorn --factory``)."""
    return create_app(ApiSettings.from_env())
