"""Dependency injection: what the lifespan put on ``app.state``, handed to handlers.

Each provider is a plain synchronous function (no thread hop). Our handlers take the one
``services`` bundle (see ``services.py`` for why one); the single parts stay available
under their own names for handlers that want just one of them.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import Provide

from tether.api.notify import Notifier
from tether.api.registry import FunctionRegistry
from tether.api.services import Services
from tether.queue.engine import QueueEngine


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_engine(state: State) -> QueueEngine:
    engine: QueueEngine = state.services.engine
    return engine


def provide_notifier(state: State) -> Notifier:
    notifier: Notifier = state.services.notifier
    return notifier


def provide_registry(state: State) -> FunctionRegistry:
    registry: FunctionRegistry = state.services.registry
    return registry


DEPENDENCIES: dict[str, Any] = {
    "services": Provide(provide_services, sync_to_thread=False),
    "engine": Provide(provide_engine, sync_to_thread=False),
    "notifier": Provide(provide_notifier, sync_to_thread=False),
    "registry": Provide(provide_registry, sync_to_thread=False),
}
