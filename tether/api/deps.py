"""Dependency injection: what the lifespan put on ``app.state``, handed to handlers.

Each provider is a plain synchronous function (no thread hop). Our handlers take the one
``services`` bundle (see ``services.py`` for why one); the single parts stay available
under their own names for handlers that want just one of them. All of them are the
caller's namespace's, which ``auth.Gate`` put in the scope before the handler ran.
"""

from __future__ import annotations

from typing import Any

from litestar.di import Provide
from litestar.types import Scope

from tether.api.auth import SCOPE_SERVICES
from tether.api.notify import Notifier
from tether.api.registry import FunctionRegistry
from tether.api.services import Services
from tether.queue.engine import QueueEngine


def provide_services(scope: Scope) -> Services:
    services: Services = scope[SCOPE_SERVICES]  # type: ignore[literal-required]
    return services


def provide_engine(scope: Scope) -> QueueEngine:
    return provide_services(scope).engine


def provide_notifier(scope: Scope) -> Notifier:
    return provide_services(scope).notifier


def provide_registry(scope: Scope) -> FunctionRegistry:
    return provide_services(scope).registry


DEPENDENCIES: dict[str, Any] = {
    "services": Provide(provide_services, sync_to_thread=False),
    "engine": Provide(provide_engine, sync_to_thread=False),
    "notifier": Provide(provide_notifier, sync_to_thread=False),
    "registry": Provide(provide_registry, sync_to_thread=False),
}
