"""tether: a durable, Redis-backed control plane for AI and backend workflows.

The public names live here; everything else is behind them.
"""

from tether.client import AsyncClient, Client
from tether.errors import (
    ApiUnavailable,
    ConfigurationError,
    Conflict,
    IdempotencyConflict,
    InvalidRequest,
    InvalidTransition,
    JobFailed,
    LeaseNotHeld,
    NotFound,
    PayloadTooLarge,
    RedisOutOfMemory,
    RedisUnavailable,
    ResultTimeout,
    RunFailed,
    TetherError,
    UnknownFunction,
    ValidationFailed,
)
from tether.workers import NonRetryable, Worker, WorkerConfig, func, run_worker

__version__ = "0.1.0"

__all__ = [
    "ApiUnavailable",
    "AsyncClient",
    "Client",
    "ConfigurationError",
    "Conflict",
    "IdempotencyConflict",
    "InvalidRequest",
    "InvalidTransition",
    "JobFailed",
    "LeaseNotHeld",
    "NonRetryable",
    "NotFound",
    "PayloadTooLarge",
    "RedisOutOfMemory",
    "RedisUnavailable",
    "ResultTimeout",
    "RunFailed",
    "TetherError",
    "UnknownFunction",
    "ValidationFailed",
    "Worker",
    "WorkerConfig",
    "__version__",
    "func",
    "run_worker",
]
