"""Runs leased jobs: one asyncio task each, bounded by ``max_jobs``, with a timeout.

A job ends in one of five ways, and each becomes one result item for the batcher:

- it returns: ``completed`` with the result, encoded once here (a result that is not
  JSON-serializable fails the job, not retried: it would fail the same way again);
- it raises: ``failed`` with the exception's type, message and traceback; retried unless
  the exception says ``retryable = False`` (bad input, ``NonRetryable``); the API counts
  attempts against the job's ``max_attempts``;
- it runs past its timeout: its task is cancelled and it is ``failed`` (retryable) with
  a ``TimeoutError``;
- the API asked for it to be cancelled: the task is cancelled and the job reported
  ``failed`` (the API records it as ``cancelled``);
- the worker shuts down: the task is cancelled and the job ``released`` (back on its
  queue at once, the attempt not counted).

A job whose lease the API says this machine lost is cancelled and nothing is reported:
another machine owns it now.

Every ending other than ``completed`` logs one line (``log_end``): job id, function,
attempt, what happened and why, and what the job becomes (retried, failed, dead, ...),
e.g. ``job 7f3c... (shout) attempt 1/3: input error, not retried (ends failed): ...``.

Timeouts share timers: deadlines are rounded up to the next ``TICK`` (50 ms) and every
job due in one tick hangs on one loop timer, so a poll of a thousand jobs arms one timer,
not a thousand (a job may overrun its timeout by up to one tick).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

from tether import tracing
from tether._client_http import dumps
from tether.protocol import LeasedJob, job_trace, job_traceparent, parse_activation_function
from tether.workers.logs import SCOPE, LogScope, LogShipper
from tether.workers.registry import Entry, Registry

log = logging.getLogger("tether.worker")

MAX_TRACEBACK = 16_000  # characters kept of a traceback: the end, where the error is
TICK = 0.05  # seconds: the resolution of job timeouts

ResultItem = dict[str, Any]
JobHook = Callable[[dict[str, Any]], Awaitable[Any]]
# Key of an item's encoded result size, read (and removed) by the batcher.
SIZE = "_size"


class NonRetryable(Exception):
    """Raise it (or a subclass) from a job to fail it at once, without retries."""

    retryable = False


class Stop(Enum):
    """Why the worker cancelled a running job."""

    TIMEOUT = "timeout"  # it ran past its timeout: report it failed, retryable
    CANCEL = "cancel"  # the API asked: report it failed, it ends cancelled
    LOST = "lost"  # the lease is gone: report nothing
    SHUTDOWN = "shutdown"  # the worker is leaving: release it


@dataclass(slots=True, eq=False)  # eq=False: hashed by identity, for the timeout buckets
class Running:
    job: LeasedJob
    entry: Entry | None
    timeout: float | None
    task: asyncio.Task[None] | None = None
    stop: Stop | None = None
    started: bool = False
    bucket: set[Running] | None = None


def error_info(exc: BaseException, message: str | None = None) -> dict[str, Any]:
    text = "".join(traceback.format_exception(exc))
    return {
        "type": type(exc).__name__,
        "message": message if message is not None else (str(exc) or type(exc).__name__),
        "traceback": text[-MAX_TRACEBACK:],
    }


def log_end(job: LeasedJob, what: str, reason: str, level: int = logging.WARNING) -> None:
    """The one log line of a job that ended here other than completed."""
    if log.isEnabledFor(level):
        log.log(
            level,
            "job %s (%s) attempt %d/%d: %s: %s",
            job.id,
            job.function,
            job.attempt,
            job.max_attempts,
            what,
            reason,
        )


def retry_delay(exc: BaseException) -> float | None:
    """Seconds an exception asks its job to be retried after: arq's ``Retry(defer=...)``
    carries them as ``defer_score`` (ms; ``None`` or 0: at once). ``None`` for any other
    exception, whose retries follow the backoff."""
    if not hasattr(exc, "defer_score"):
        return None
    score = getattr(exc, "defer_score", None)
    try:
        return max(0.0, float(score or 0) / 1000)
    except (TypeError, ValueError):
        return 0.0


def _fate(job: LeasedJob, retryable: bool) -> str:
    """What the API will make of a failure report (it alone decides, by these rules)."""
    if not retryable:
        return "not retried (ends failed)"
    if job.attempt >= job.max_attempts:
        return "no attempt left (ends dead)"
    return "will be retried"


def _failed(job: LeasedJob, error: dict[str, Any], retryable: bool) -> ResultItem:
    return {
        "id": job.id,
        "token": job.token,
        "status": "failed",
        "error": error,
        "retryable": retryable,
    }


class Executor:
    """Starts jobs as tasks and hands each outcome to ``report``."""

    def __init__(
        self,
        registry: Registry,
        *,
        max_jobs: int,
        report: Callable[[ResultItem, int], None],
        base_ctx: dict[str, Any],
        on_job_start: JobHook | None = None,
        on_job_end: JobHook | None = None,
        logs: LogShipper | None = None,
    ) -> None:
        self.registry = registry
        self.logs = logs  # None: lines logged in jobs are not captured
        self.on_job_start = on_job_start
        self.on_job_end = on_job_end
        self.max_jobs = max_jobs
        self.report = report
        self.base_ctx = base_ctx
        self.running: dict[str, Running] = {}
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._buckets: dict[int, set[Running]] = {}  # deadline tick -> jobs due then

    @property
    def capacity(self) -> int:
        return max(0, self.max_jobs - len(self.running))

    async def wait_for_room(self) -> None:
        while self.capacity <= 0:
            self._room.clear()
            await self._room.wait()

    def start(self, job: LeasedJob) -> None:
        old = self.running.pop(job.id, None)
        if old is not None:
            # Leased to us again (our old lease expired): the old attempt is stale.
            self._stop(old, Stop.LOST)
        entry = self.registry.get(job.function)
        # The job's own terms rule: the API set them at enqueue, from the caller or else
        # from the timeout this function registered.
        timeout = job.timeout if job.timeout is not None or entry is None else entry.timeout
        rec = Running(job, entry, timeout)
        self.running[job.id] = rec
        self._idle.clear()
        if len(self.running) >= self.max_jobs:
            self._room.clear()
        loop = asyncio.get_running_loop()
        if timeout is not None:
            self._arm(loop, rec, timeout)
        rec.task = loop.create_task(self._run(rec), name=f"job:{job.id}")

    def _arm(self, loop: asyncio.AbstractEventLoop, rec: Running, timeout: float) -> None:
        tick = math.ceil((loop.time() + timeout) / TICK)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            loop.call_at(tick * TICK, self._expire, tick)
        bucket.add(rec)
        rec.bucket = bucket

    def _expire(self, tick: int) -> None:
        for rec in self._buckets.pop(tick, ()):
            self._stop(rec, Stop.TIMEOUT)

    def stop_job(self, job_id: str, why: Stop) -> bool:
        """Cancel a running job; returns False if it is not running here."""
        rec = self.running.get(job_id)
        return rec is not None and self._stop(rec, why)

    def _stop(self, rec: Running, why: Stop) -> bool:
        if rec.task is None or rec.task.done():
            return False
        if rec.stop is None or why is Stop.LOST:
            rec.stop = why
            # A task not started yet sees ``stop`` when it starts; cancelling it now
            # would skip its body, and with it the report and the bookkeeping.
            if rec.started:
                rec.task.cancel()
        return True

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs; returns False if some still do after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def stop_all(self, why: Stop) -> None:
        """Cancel every running job and wait until each has reported."""
        tasks = [r.task for r in self.running.values() if r.task is not None]
        for rec in list(self.running.values()):
            self._stop(rec, why)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _ctx(
        self, job: LeasedJob, timeout: float | None, traceparent: str | None = None
    ) -> dict[str, Any]:
        ctx = dict(self.base_ctx)
        ctx["job_id"] = job.id
        ctx["job_try"] = job.attempt
        ctx["max_tries"] = job.max_attempts
        ctx["function"] = job.function
        ctx["parent"] = job.parent
        ctx["timeout"] = timeout
        if job.enqueued_at is not None:
            ctx["enqueue_time"] = datetime.fromtimestamp(job.enqueued_at, UTC)
        # The W3C traceparent to pass on (outgoing requests): the attempt's span when
        # spans are exported, else the context the job came with (made up from its id if
        # none). The workflow ctx reads it too (WorkflowContext.traceparent).
        ctx["traceparent"] = traceparent or job_traceparent(job.id, job.trace)
        return ctx

    async def _run(self, rec: Running) -> None:
        rec.started = True
        try:
            if rec.stop is not None:  # stopped before it began
                item = self._stopped(rec)
            else:
                try:
                    if tracing.TRACER is None:
                        item = await self._attempt(rec)
                    else:
                        item = await self._traced_attempt(rec)
                except asyncio.CancelledError as exc:
                    # Ours (a stop reason is set), or raised by the job's own code.
                    item = self._stopped(rec) if rec.stop else self._raised(rec.job, exc)
            # Reported from the task itself: the result reaches the batcher in the same
            # loop step the job ends in.
            if item is not None:
                self.report(item, item.pop(SIZE, 0))
            elif rec.stop is Stop.LOST:
                log_end(rec.job, "lease lost", "another machine runs it now; result dropped")
        finally:
            if rec.bucket is not None:
                rec.bucket.discard(rec)
            if self.running.get(rec.job.id) is rec:
                del self.running[rec.job.id]
            if len(self.running) < self.max_jobs:
                self._room.set()
            if not self.running:
                self._idle.set()

    async def _traced_attempt(self, rec: Running) -> ResultItem:
        """``_attempt`` inside its span (and, for a first attempt, the span of the time it
        spent queued, from its enqueue to now), under the job's trace context."""
        job = rec.job
        parent = job_trace(job.id, job.trace)
        activation = parse_activation_function(job.function)
        attributes: dict[str, Any] = {
            "tether.job.id": job.id,
            "tether.function": job.function,
            "tether.attempt": job.attempt,
            "tether.max_attempts": job.max_attempts,
        }
        if job.parent:
            attributes["tether.run.id"] = job.parent
        if activation is not None:
            attributes["tether.workflow"] = activation[0]
            attributes["tether.workflow.version"] = activation[1]
        now_ms = time.time() * 1000
        if job.attempt == 1 and job.enqueued_at is not None:
            tracing.record(
                f"tether.queued {job.function}",
                parent,
                attributes,
                job.enqueued_at * 1000,
                now_ms,
            )
        name = (
            f"tether.activation {activation[0]}" if activation else f"tether.attempt {job.function}"
        )
        span = tracing.start(name, parent, attributes, kind="CONSUMER")
        try:
            with tracing.current(span):
                item = await self._attempt(rec, tracing.context_of(span).traceparent)
            if item.get("status") == "failed":
                error = item.get("error") or {}
                tracing.set_error(span, f"{error.get('type')}: {error.get('message')}")
            elif item.get("status") == "released":
                span.set_attribute("tether.released", True)
            return item
        except BaseException as exc:
            tracing.fail(span, exc)
            raise
        finally:
            span.end()

    async def _attempt(self, rec: Running, traceparent: str | None = None) -> ResultItem:
        job, entry = rec.job, rec.entry
        if entry is None:
            log_end(job, "released", "its function is not served here", logging.ERROR)
            return {"id": job.id, "token": job.token, "status": "released"}
        ctx = self._ctx(job, rec.timeout, traceparent)
        # Lines logged from here to the end of on_job_end are the job's, in this task's
        # own context (concurrent jobs never see each other's scope); the worker's own
        # line about how the job ended is not.
        scope = (
            SCOPE.set(LogScope(self.logs, job.id, job.token, job.attempt)) if self.logs else None
        )
        raised: Exception | SystemExit | None = None
        try:
            if self.on_job_start is not None:
                await self.on_job_start(ctx)
            result = await entry.handler(job, ctx)
        except (Exception, SystemExit) as exc:  # SystemExit: a job's sys.exit() fails it
            raised = exc
        finally:
            if self.on_job_end is not None:
                await self._job_end(job, ctx)
            if scope is not None:
                SCOPE.reset(scope)
        if raised is not None:
            return self._raised(job, raised)
        try:
            data = dumps(result)
        except TypeError as exc:
            error = error_info(exc, f"the result is not JSON-serializable: {exc}")
            log_end(job, f"failed, {_fate(job, False)}", error["message"])
            return _failed(job, error, retryable=False)
        # Encoded once: the batch embeds these bytes as they are.
        return {
            "id": job.id,
            "token": job.token,
            "status": "completed",
            "result": orjson.Fragment(data),
            SIZE: len(data),
        }

    async def _job_end(self, job: LeasedJob, ctx: dict[str, Any]) -> None:
        # As in arq: after every attempt, whatever its outcome; its own failure is
        # logged and changes nothing about the job's.
        assert self.on_job_end is not None
        try:
            await self.on_job_end(ctx)
        except Exception:
            log.exception("job %s (%s): on_job_end raised", job.id, job.function)

    @staticmethod
    def _raised(job: LeasedJob, exc: BaseException) -> ResultItem:
        retryable = getattr(exc, "retryable", True) is not False
        error = error_info(exc)
        what = "input error" if type(exc).__name__ == "InputError" else "failed"
        retry_in = retry_delay(exc)
        if retry_in is not None:
            # arq's Retry(defer=...): retried (attempts allowing) after that long.
            retryable = True
            what = f"asked to retry in {retry_in:g}s"
        log_end(job, f"{what}, {_fate(job, retryable)}", f"{error['type']}: {error['message']}")
        item = _failed(job, error, retryable)
        if retry_in is not None:
            item["retry_in"] = retry_in
        return item

    @staticmethod
    def _stopped(rec: Running) -> ResultItem | None:
        job = rec.job
        if rec.stop is Stop.LOST:
            return None
        if rec.stop is Stop.TIMEOUT:
            error = {"type": "TimeoutError", "message": f"timed out after {rec.timeout:g}s"}
            log_end(job, f"timed out, {_fate(job, True)}", error["message"])
            return _failed(job, error, retryable=True)
        if rec.stop is Stop.CANCEL:
            error = {"type": "Cancelled", "message": "cancelled while running, as requested"}
            log_end(job, "cancelled", "the API asked (a cancel request)", logging.INFO)
            return _failed(job, error, retryable=False)
        log_end(job, "released", "this worker is stopping; it runs elsewhere", logging.INFO)
        return {"id": job.id, "token": job.token, "status": "released"}
