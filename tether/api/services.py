"""What every handler works with: one ``Services`` per namespace, built on first use and
kept for the life of the process (``Tenants``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.api.metrics import Metrics
from tether.api.notify import Notifier
from tether.api.registry import FunctionRegistry
from tether.api.settings import ApiSettings
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine


@dataclass(frozen=True, slots=True)
class Services:
    """Injected into handlers as ONE dependency, ``services``: Litestar resolves two or
    more dependencies of a handler concurrently, in a task group of its own per request,
    which costs more than most of our handlers do."""

    settings: ApiSettings
    # The shared, bounded pool: a ``redis_py.Client``. Typed ``Any`` here because Litestar
    # models a dependency's fields with msgspec, which refuses a union of two classes.
    redis: Any
    engine: QueueEngine
    notifier: Notifier
    registry: FunctionRegistry
    metrics: Metrics
    runs: RunEngine  # workflow runs, on the same pool and keys as ``engine``
    namespace: str = "default"
