"""What a worker serves: named handlers, each with the spec it registers with the API.

A handler is an async callable ``handler(job, ctx) -> result`` taking the leased job
(``tether.protocol.LeasedJob``) and the per-job ctx dict; the executor runs it, and
whatever it returns (JSON-serializable) is the job's result. Functions are wrapped into
handlers here (``FunctionHandler``); anything else — durable workflows — is added with
``Registry.add_handler(name, handler, spec)``.

A handler that raises fails the attempt; an exception whose ``retryable`` attribute is
False (``tether.workers.NonRetryable``, ``InputError``) fails the job without retries.

Workflows listed in ``WorkerSettings.workflows`` are registered by
``tether.workers.workflow.register_workflows(registry, workflows, worker)`` (``worker``
is the ``Worker``: its ``config``, ``machine_id``, ``ctx`` and, once running,
``session``), which the workflow engine provides; it calls ``add_handler`` once per
workflow version.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from tether.errors import ConfigurationError
from tether.limits import MAX_ATTEMPTS, MAX_FUNCTIONS_PER_MACHINE, MAX_TIMEOUT, MIN_TIMEOUT
from tether.protocol import ID_PATTERN, FunctionSpec, LeasedJob
from tether.workers.binding import InputBinder


class Handler(Protocol):
    def __call__(self, job: LeasedJob, ctx: dict[str, Any]) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Func:
    """A function with its registration options; build it with ``tether.func``."""

    fn: Callable[..., Any]
    name: str
    timeout: float | None = None  # seconds; None: the worker's job_timeout
    max_tries: int | None = None  # None: the worker's max_tries


def func(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    timeout: float | None = None,
    max_tries: int | None = None,
) -> Func:
    """Register ``fn`` under ``name`` (default: its ``__name__``) with its own timeout
    (seconds) and maximum number of attempts, overriding the worker's defaults."""
    if isinstance(fn, Func):
        fn = fn.fn
    check_function(fn)
    if timeout is not None and not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be from {MIN_TIMEOUT} to {MAX_TIMEOUT:g} seconds, not {timeout!r}"
        )
    if max_tries is not None and (
        not isinstance(max_tries, int) or not 1 <= max_tries <= MAX_ATTEMPTS
    ):
        raise ConfigurationError(
            f"max_tries must be an integer from 1 to {MAX_ATTEMPTS}, not {max_tries!r}"
        )
    fn_name = name or str(getattr(fn, "__name__", ""))
    if not fn_name:
        raise ConfigurationError(
            f"{fn!r} has no __name__ to register it under: name it with tether.func(fn, name='...')"
        )
    return Func(fn, fn_name, timeout, max_tries)


def from_arq(obj: Any) -> Func | None:
    """An ``arq.func(...)`` wrapper (``arq.worker.Function``: ``name``, ``coroutine``,
    ``timeout_s``, ``max_tries``, ...), read by its attributes; ``None`` for anything else.
    Its ``keep_result_s`` and ``keep_result_forever`` are ignored: results are kept for
    the deployment's retention."""
    if not (hasattr(obj, "coroutine") and hasattr(obj, "name") and hasattr(obj, "timeout_s")):
        return None
    timeout = obj.timeout_s
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    return func(obj.coroutine, name=obj.name, timeout=timeout, max_tries=obj.max_tries)


def check_function(fn: Any) -> None:
    """What ``WorkerSettings.functions`` accepts, with the fix in the message."""
    # Not imported here (it imports this module): no Workflow exists until it is loaded.
    workflow_type = getattr(sys.modules.get("tether.workers.workflow"), "Workflow", None)
    if workflow_type is not None and isinstance(fn, workflow_type):
        raise ConfigurationError(
            f"the workflow {fn.name!r} (v{fn.version}) is listed among functions: "
            "list it in WorkerSettings.workflows instead"
        )
    if not callable(fn):
        raise ConfigurationError(
            f"{fn!r} is not callable: WorkerSettings.functions takes functions "
            "(async def f(ctx, ...) or def f(ctx, ...)) or tether.func(f, ...)"
        )


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    handler: Handler
    spec: FunctionSpec
    # Seconds a job may run when it carries no timeout of its own (the API normally
    # stamps every job with its own, from the caller or from ``spec.timeout``).
    timeout: float | None = None


def _is_async(fn: Callable[..., Any]) -> bool:
    target = fn.func if isinstance(fn, functools.partial) else fn
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async callable objects
    )


class FunctionHandler:
    """Runs a plain function for a job: binds and validates the input, then awaits it
    (async) or runs it in the worker's thread pool (sync)."""

    def __init__(self, fn: Callable[..., Any], name: str, threads: Executor | None) -> None:
        self.fn = fn
        self.name = name
        self.binder = InputBinder(fn, name)
        self.is_async = _is_async(fn)
        self.threads = threads

    def __call__(self, job: LeasedJob, ctx: dict[str, Any]) -> Awaitable[Any]:
        args, kwargs = self.binder.bind(job.input)
        if self.is_async:
            return self.fn(ctx, *args, **kwargs)  # type: ignore[no-any-return]
        call = functools.partial(self.fn, ctx, *args, **kwargs)
        # A thread cannot be interrupted: on timeout or cancellation the job is reported
        # at once and the thread finishes on its own (as in arq). It runs in a copy of the
        # job's context, so its log lines are the job's (tether/workers/logs.py).
        run = contextvars.copy_context().run
        return asyncio.get_running_loop().run_in_executor(self.threads, run, call)


def _describe(handler: Any) -> str:
    fn = getattr(handler, "fn", handler)
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(fn)


class Registry:
    """Handlers by name."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def add_handler(
        self,
        name: str,
        handler: Handler,
        spec: FunctionSpec,
        *,
        timeout: float | None = None,
    ) -> Entry:
        """Serve jobs of ``name`` with ``handler``; ``spec`` is what the API learns (its
        ``timeout`` and ``max_attempts`` become the defaults of the jobs enqueued)."""
        if not ID_PATTERN.match(name or ""):
            raise ConfigurationError(
                f"{name!r} is not a valid function name: use 1-200 letters, digits and _ . : @ -"
            )
        if name in self._entries:
            raise ConfigurationError(
                f"two functions are registered as {name!r}: "
                f"{_describe(self._entries[name].handler)} and {_describe(handler)}; "
                "give one another name with tether.func(f, name='...')"
            )
        if len(self._entries) >= MAX_FUNCTIONS_PER_MACHINE:
            raise ConfigurationError(
                f"a worker serves at most {MAX_FUNCTIONS_PER_MACHINE} functions and workflow "
                "versions (tether.limits.MAX_FUNCTIONS_PER_MACHINE): split it in two"
            )
        if spec.name != name:
            raise ConfigurationError(f"the spec of {name!r} is named {spec.name!r}")
        entry = Entry(name, handler, spec, timeout if timeout is not None else spec.timeout)
        self._entries[name] = entry
        return entry

    def add_function(
        self,
        fn: Callable[..., Any] | Func,
        *,
        job_timeout: float | None,
        max_tries: int,
        threads: Executor | None = None,
    ) -> Entry:
        """Serve a plain function (or a ``tether.func`` wrapper) with the given defaults."""
        f = fn if isinstance(fn, Func) else from_arq(fn) or func(fn)
        try:
            handler = FunctionHandler(f.fn, f.name, threads)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"cannot register {f.name!r}: {exc}") from exc
        timeout = f.timeout if f.timeout is not None else job_timeout
        tries = f.max_tries if f.max_tries is not None else max_tries
        try:
            spec = FunctionSpec(
                name=f.name,
                input_schema=handler.binder.schema,
                timeout=timeout,
                max_attempts=tries,
                kind="function",
            )
        except ValidationError as exc:  # one line naming the function, not a traceback
            errors = exc.errors(include_url=False)
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            raise ConfigurationError(f"cannot register {f.name!r}: {problems}") from None
        return self.add_handler(f.name, handler, spec)

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    @property
    def specs(self) -> list[FunctionSpec]:
        return [e.spec for e in self._entries.values()]
