"""Namespaces (tenants) in one API process: a ``Services`` per namespace, built on first
use from the deployment's settings with that namespace's keys, and kept.

Every namespace's engines share the one Redis pool; their notifiers are views of the one
subscription (``Notifier.for_namespace``), so a thousand tenants cost no more
connections than one.
"""

from __future__ import annotations

import dataclasses

from tether.api.metrics import Metrics
from tether.api.notify import Notifier
from tether.api.registry import FunctionRegistry
from tether.api.services import Services
from tether.api.settings import ApiSettings
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import DEFAULT_NAMESPACE, check_namespace
from tether.queue.redis_py import Client
from tether.queue.runs import RunEngine


class Tenants:
    def __init__(
        self,
        settings: ApiSettings,
        redis: Client,
        config: QueueConfig,
        notifier: Notifier,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._config = config
        self._notifier = notifier
        self._metrics = metrics
        self._by_namespace: dict[str, Services] = {}
        self.default = self.get(DEFAULT_NAMESPACE)

    def get(self, namespace: str) -> Services:
        """The services of ``namespace`` (built once)."""
        services = self._by_namespace.get(namespace)
        if services is None:
            services = self._build(check_namespace(namespace))
            self._by_namespace[namespace] = services
        return services

    def all(self) -> list[Services]:
        return list(self._by_namespace.values())

    def _build(self, namespace: str) -> Services:
        keys = self._config.keys.for_namespace(namespace)
        if namespace == self._config.keys.namespace:
            config, notifier, metrics = self._config, self._notifier, self._metrics
        else:
            config = dataclasses.replace(self._config, keys=keys)
            notifier = self._notifier.for_namespace(namespace, keys)
            metrics = Metrics()
        return Services(
            self._settings,
            self._redis,
            QueueEngine(self._redis, config),
            notifier,
            FunctionRegistry(self._redis, keys, limit=self._settings.max_registered_functions),
            metrics,
            RunEngine(self._redis, config),
            namespace,
        )
