"""Queue settings every process must agree on, from the same ``TETHER_*`` variables the
API reads (``tether.api.settings.ApiSettings``): the key prefix (``TETHER_PREFIX``), the
partitions (``TETHER_PARTITIONS``), lease and dead-machine timing. The orchestrator and
``tether inspect`` use them, so they build exactly the key names the API builds."""

from __future__ import annotations

from tether.cli.common import UsageError
from tether.queue.config import QueueConfig


def queue_config() -> QueueConfig:
    from tether.api.settings import ApiSettings

    try:
        return ApiSettings.from_env().queue_config()
    except ValueError as exc:
        raise UsageError(f"bad configuration: {exc}") from exc
