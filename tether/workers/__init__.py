"""arq-style workers: ``tether worker app.tasks:WorkerSettings``.

Modules, one concern each: ``settings`` (WorkerSettings and loading ``module:Attr``),
``binding`` (job input to function arguments), ``registry`` (named handlers and their
specs), ``transport`` (HTTP calls of a machine, with retries), ``poller`` (long polls),
``heartbeat``, ``executor`` (runs jobs), ``results`` (batches results), ``worker`` (wires
them), ``main`` (the process entry point, ``run_worker``).
"""

from tether.workers.binding import InputError
from tether.workers.executor import NonRetryable
from tether.workers.main import run_worker
from tether.workers.registry import Entry, Func, Handler, Registry, func
from tether.workers.settings import WorkerConfig, load_settings
from tether.workers.worker import Worker

__all__ = [
    "Entry",
    "Func",
    "Handler",
    "InputError",
    "NonRetryable",
    "Registry",
    "Worker",
    "WorkerConfig",
    "func",
    "load_settings",
    "run_worker",
]
