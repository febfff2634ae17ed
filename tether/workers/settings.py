"""Worker settings, arq-style: a class or object whose attributes configure the worker.

    class WorkerSettings:
        functions = [resize, tether.func(send_email, timeout=30, max_tries=3)]
        workflows = []            # durable workflows (tether.workers.workflow)
        cron_jobs = [cron(tidy, hour=3, minute=0)]  # arq's cron jobs (tether/workers/cron.py)
        timezone = "UTC"          # the zone cron_jobs' fields are read in
        on_startup = startup      # async def startup(ctx): ... (ctx is the shared dict)
        on_shutdown = shutdown
        on_job_start = job_start  # async def job_start(ctx): before each job (its ctx)
        on_job_end = job_end      # after each job, whatever its outcome
        max_jobs = 10             # jobs run at once
        job_timeout = 300         # seconds, for functions without their own
        max_tries = 5             # attempts, for functions without their own
        ctx = {}                  # copied into every job's ctx
        tether_url = None         # default: $TETHER_URL, else http://127.0.0.1:8000
        api_key = None            # default: $TETHER_API_KEY, else ./.tether/machine.key
        machine_id = None         # default: $TETHER_MACHINE_ID, else <hostname>-<pid>-<rand>
        shutdown_grace = 10       # seconds in-flight jobs get to finish on SIGTERM
        poll_wait = 20            # seconds a long poll waits for work
        max_cached_runs = 1000    # runs kept suspended in memory (sticky replay; 0: none)

``load_settings("app.tasks:WorkerSettings")`` imports the module and reads the attribute;
every missing attribute keeps its default, and a bad value raises ``ConfigurationError``
naming it.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tether._client_http import resolve_url
from tether.errors import ConfigurationError
from tether.limits import MAX_ATTEMPTS, MAX_TIMEOUT, MIN_TIMEOUT
from tether.protocol import ID_PATTERN, MAX_JOBS_PER_POLL, MAX_POLL_WAIT

MAX_CACHED_RUNS = 1_000_000

Hook = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("tether.worker")


def default_machine_id() -> str:
    """``$TETHER_MACHINE_ID``, else ``<hostname>-<pid>-<random>``: unique per process,
    readable in listings."""
    if env := os.environ.get("TETHER_MACHINE_ID"):
        return env
    host = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:100] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class WorkerConfig:
    """The resolved settings of one worker process."""

    functions: list[Any] = field(default_factory=list)
    workflows: list[Any] = field(default_factory=list)
    cron_jobs: list[Any] = field(default_factory=list)
    timezone: Any = "UTC"
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    on_job_start: Hook | None = None
    on_job_end: Hook | None = None
    max_jobs: int = 10
    job_timeout: float | None = 300.0
    max_tries: int = 5
    ctx: dict[str, Any] = field(default_factory=dict)
    tether_url: str = field(default_factory=lambda: resolve_url(None))
    machine_id: str = field(default_factory=default_machine_id)
    api_key: str | None = None  # None: $TETHER_API_KEY, else ./.tether/machine.key
    shutdown_grace: float = 10.0
    poll_wait: float = 20.0
    max_cached_runs: int = 1000
    settings: Any = None  # the object these came from, for hooks that want more

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(name: str, why: str) -> ConfigurationError:
            value = getattr(self, name)
            return ConfigurationError(
                f"WorkerSettings.{name} {why}, not {value!r}", details={"setting": name}
            )

        if not isinstance(self.max_jobs, int) or not 1 <= self.max_jobs <= MAX_JOBS_PER_POLL:
            raise bad("max_jobs", f"must be an integer from 1 to {MAX_JOBS_PER_POLL}")
        if not isinstance(self.max_tries, int) or not 1 <= self.max_tries <= MAX_ATTEMPTS:
            raise bad("max_tries", f"must be an integer from 1 to {MAX_ATTEMPTS}")
        if self.job_timeout is not None and (
            not isinstance(self.job_timeout, int | float)
            or not MIN_TIMEOUT <= self.job_timeout <= MAX_TIMEOUT
        ):
            raise bad(
                "job_timeout",
                f"must be a number of seconds from {MIN_TIMEOUT} to {MAX_TIMEOUT:g}, or None",
            )
        if not isinstance(self.shutdown_grace, int | float) or self.shutdown_grace < 0:
            raise bad("shutdown_grace", "must be a number of seconds of at least 0")
        if not isinstance(self.poll_wait, int | float) or not 0 < self.poll_wait <= MAX_POLL_WAIT:
            raise bad("poll_wait", f"must be a number of seconds in (0, {MAX_POLL_WAIT}]")
        if (
            not isinstance(self.max_cached_runs, int)
            or isinstance(self.max_cached_runs, bool)
            or not 0 <= self.max_cached_runs <= MAX_CACHED_RUNS
        ):
            raise bad("max_cached_runs", f"must be an integer from 0 to {MAX_CACHED_RUNS}")
        if not isinstance(self.ctx, dict):
            raise bad("ctx", "must be a dict")
        if not isinstance(self.functions, list | tuple):
            raise bad("functions", "must be a list")
        if not isinstance(self.workflows, list | tuple):
            raise bad("workflows", "must be a list")
        for hook in ("on_startup", "on_shutdown", "on_job_start", "on_job_end"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise bad(hook, "must be an async function taking ctx")
        if not isinstance(self.cron_jobs, list | tuple):
            raise bad("cron_jobs", "must be a list")
        if not self.functions and not self.workflows and not self.cron_jobs:
            raise ConfigurationError(
                "WorkerSettings lists no functions, workflows or cron_jobs: nothing to serve"
            )
        if not ID_PATTERN.match(str(self.machine_id)):
            raise bad("machine_id", "must be 1-200 letters, digits and _ . : @ -")
        self.tether_url = resolve_url(self.tether_url)
        self.functions = list(self.functions)
        self.workflows = list(self.workflows)
        from tether.workers.cron import cron_jobs_of, zone_name

        self.cron_jobs = cron_jobs_of(self.cron_jobs)
        self.timezone = zone_name(self.timezone)


_MISSING: Any = object()

_FIELDS = (
    "functions",
    "workflows",
    "cron_jobs",
    "timezone",
    "on_startup",
    "on_shutdown",
    "on_job_start",
    "on_job_end",
    "max_jobs",
    "job_timeout",
    "max_tries",
    "ctx",
    "machine_id",
    "api_key",
    "shutdown_grace",
    "poll_wait",
    "max_cached_runs",
)


def import_string(path: str) -> Any:
    """``"package.module:Attr"`` (or ``package.module.Attr``) to the object it names."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(
            f"{path!r} is not a settings path: use 'package.module:WorkerSettings'"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        # Like `python -m`, find the application's modules in the current directory.
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigurationError(f"{module_name!r} has no attribute {attr!r}") from exc
    return obj


def load_settings(
    settings: str | WorkerConfig | Any,
    *,
    url: str | None = None,
    machine_id: str | None = None,
    api_key: str | None = None,
) -> WorkerConfig:
    """Resolve settings given as ``"module:Attr"``, a ``WorkerConfig``, a dict, or a
    class/object with attributes; ``url`` and ``machine_id`` override what they say."""
    if isinstance(settings, str):
        settings = import_string(settings)
    if isinstance(settings, WorkerConfig):
        config = settings
    else:
        get: Callable[[str], Any]
        if isinstance(settings, dict):
            unknown = set(settings) - set(_FIELDS) - {"tether_url"}
            if unknown:
                raise ConfigurationError(f"unknown worker settings: {sorted(unknown)}")
            source = settings

            def get(name: str) -> Any:
                return source.get(name, _MISSING)
        else:

            def get(name: str) -> Any:
                return getattr(settings, name, _MISSING)

        queue_name = get("queue_name")
        if isinstance(queue_name, str) and queue_name != "arq:queue":
            # arq's queues separate workers; tether routes by function name, so this
            # worker takes jobs of its functions whatever queue they were sent to.
            log.warning(
                "WorkerSettings.queue_name %r is ignored: tether routes jobs by function "
                "name, so this worker takes every job of the functions it serves "
                "(docs/arq.md)",
                queue_name,
            )
        # An attribute set to None means None (job_timeout = None: no timeout), except
        # where None is documented as "the default".
        values = {name: get(name) for name in _FIELDS if get(name) is not _MISSING}
        values = {k: v for k, v in values.items() if v is not None or k == "job_timeout"}
        configured_url = get("tether_url")
        values["tether_url"] = resolve_url(None if configured_url is _MISSING else configured_url)
        if isinstance(values.get("job_timeout"), timedelta):  # arq takes either
            values["job_timeout"] = values["job_timeout"].total_seconds()
        if "ctx" in values:
            values["ctx"] = dict(values["ctx"])  # each worker gets its own copy
        config = WorkerConfig(**values, settings=settings)
    if url is not None:
        config.tether_url = resolve_url(url)
    if machine_id is not None:
        config.machine_id = machine_id
        config.validate()
    if api_key is not None:
        config.api_key = api_key
    return config
