"""tether: a durable, Redis-backed control plane for AI and backend workflows.

The public names live here; everything else is behind them.
"""

from tether.client import AsyncClient, Client
from tether.errors import (
    ApiUnavailable,
    ConfigurationError,
    Conflict,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidTransition,
    JobFailed,
    LeaseNotHeld,
    NoLiveMachine,
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
from tether.workers.context import (
    Approval,
    ChildFailed,
    NonDeterminismError,
    StepFailed,
    WaitTimeout,
    WorkflowContext,
)
from tether.workers.cron import CronJob, cron
from tether.workers.workflow import Workflow, workflow

__version__ = "0.1.0"

__all__ = [
    "ApiUnavailable",
    "Approval",
    "AsyncClient",
    "ChildFailed",
    "Client",
    "ConfigurationError",
    "Conflict",
    "CronJob",
    "IdempotencyConflict",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "InvalidTransition",
    "JobFailed",
    "LeaseNotHeld",
    "NoLiveMachine",
    "NonDeterminismError",
    "NonRetryable",
    "NotFound",
    "PayloadTooLarge",
    "RedisOutOfMemory",
    "RedisUnavailable",
    "ResultTimeout",
    "RunFailed",
    "StepFailed",
    "TetherError",
    "UnknownFunction",
    "ValidationFailed",
    "WaitTimeout",
    "Worker",
    "WorkerConfig",
    "Workflow",
    "WorkflowContext",
    "__version__",
    "cron",
    "func",
    "run_worker",
    "workflow",
]
