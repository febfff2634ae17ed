"""Python ``logging`` inside jobs and workflows, captured and shipped to the API.

The executor sets ``SCOPE`` (a context variable) for each job it runs: the job's id,
token and attempt, and for a workflow activation its run (and, inside ``ctx.step``, the
step's position and name). Each job is its own asyncio task with its own copy of the
context (sync functions carry it into their thread), so concurrent jobs in one worker
never mix lines. ``LogCapture``, one handler on the root logger, turns every record
logged under a scope into a line; records logged outside any job (the worker's own) are
left alone. Lines a workflow logs while it replays history are not kept again.

Lines go to ``LogShipper``: a bounded buffer (``log_buffer`` lines, counting those in
flight) that never blocks a job. When it is full, lines are dropped and counted per
job; the count reaches the API with that job's next batch (``dropped``), is stored on
the job or run, and is shown with its logs. Shipping:
- a finished job's lines ride its result (``ResultsRequest.logs``): no extra request;
- the rest (jobs still running) leave every ``linger`` seconds in one request
  (``POST /v1/machines/{id}/logs``), retried with backoff while the API is away (the
  bound holds meanwhile: new lines are dropped, counted, and reported later);
- on shutdown, whatever is left is sent within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import orjson

from tether.errors import TetherError
from tether.limits import MAX_LOG_BATCH_LINES
from tether.workers.transport import MachineTransport, retrying

log = logging.getLogger("tether.worker")

DEFAULT_BUFFER = 10_000  # lines held at most (buffered + in flight)
DEFAULT_LINGER = 0.2  # seconds lines of running jobs wait, so short jobs' ride results


@dataclass(slots=True)
class LogScope:
    """Whose lines are logged now (set per job, per activation, per step)."""

    shipper: LogShipper  # the worker's (one process may run several)
    job_id: str
    token: str
    attempt: int
    run_id: str | None = None
    step: int | None = None
    step_name: str | None = None
    # For a workflow: True while it replays recorded history (lines not kept again).
    replaying: Callable[[], bool] | None = None


SCOPE: ContextVar[LogScope | None] = ContextVar("tether_log_scope", default=None)


@contextlib.contextmanager
def scope(value: LogScope | None) -> Iterator[None]:
    token = SCOPE.set(value)
    try:
        yield
    finally:
        SCOPE.reset(token)


@contextlib.contextmanager
def step_scope(position: int, name: str) -> Iterator[None]:
    """Lines logged inside a workflow step carry its position and name."""
    current = SCOPE.get()
    if current is None:
        yield
        return
    with scope(replace(current, step=position, step_name=name, replaying=None)):
        yield


def workflow_scope(run_id: str, replaying: Callable[[], bool]) -> LogScope | None:
    """Mark the current job's scope as a workflow activation of ``run_id`` (for the rest
    of the activation's task, and the code's task it starts); returns that scope."""
    current = SCOPE.get()
    if current is None:
        return None
    scope = replace(current, run_id=run_id, replaying=replaying)
    SCOPE.set(scope)
    return scope


def rebind(scope: LogScope | None) -> None:
    """Point a kept run's scope at the activation resuming it (the current job's), so
    the lines its code logs from now on are that activation's."""
    current = SCOPE.get()
    if scope is not None and current is not None:
        scope.job_id, scope.token, scope.attempt = current.job_id, current.token, current.attempt


class _JobLines:
    __slots__ = ("dropped", "lines", "token")

    def __init__(self, token: str) -> None:
        self.token = token
        self.lines: list[str] = []  # each a JSON object's text
        self.dropped = 0


class LogShipper:
    """The bounded buffer of captured lines and the task that ships them."""

    def __init__(
        self,
        transport: MachineTransport | None,
        *,
        max_lines: int = DEFAULT_BUFFER,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        self.transport = transport
        self.max_lines = max_lines
        self.linger = linger
        self._jobs: dict[tuple[str, str], _JobLines] = {}  # (job id, token) -> lines
        self._lock = threading.Lock()
        self._held = 0  # lines buffered or in flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._settled: asyncio.Event | None = None
        self._urgent = False
        self._task: asyncio.Task[None] | None = None
        # Jobs with lines in a request now, and an event set when a request ends: a
        # job's later lines wait for its earlier ones, so they are stored in order.
        self._in_flight: dict[str, int] = {}
        self._sent: asyncio.Event | None = None
        self.dropped = 0  # lines dropped here (buffer full), over the worker's life
        self.rejected = 0  # lines the API refused (not this machine's job any more)
        self.shipped = 0  # lines the API accepted
        self.requests = 0  # POST .../logs requests (lines riding results not counted)

    # -- from any thread -------------------------------------------------------------

    def put(self, where: LogScope, line: str) -> None:
        """Buffer one line, or count it dropped; never blocks."""
        key = (where.job_id, where.token)  # a job's attempts ship apart, each its token
        with self._lock:
            entry = self._jobs.get(key)
            if entry is None:
                entry = self._jobs[key] = _JobLines(where.token)
            if self._held >= self.max_lines:
                entry.dropped += 1
                self.dropped += 1
            else:
                entry.lines.append(line)
                self._held += 1
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or wake.is_set():
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(wake.set)

    # -- on the loop -----------------------------------------------------------------

    @property
    def held(self) -> int:
        return self._held

    @property
    def pending(self) -> bool:
        """Lines, or counts of dropped lines, wait to be shipped."""
        return bool(self._jobs)

    def take(
        self, job_ids: Sequence[str] | None = None, limit: int = MAX_LOG_BATCH_LINES
    ) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` lines as LogBatch-shaped dicts (of ``job_ids`` only, if given),
        and how many lines they hold; those lines stay counted as held until ``done``."""
        batches: list[dict[str, Any]] = []
        count = 0
        with self._lock:
            wanted = None if job_ids is None else set(job_ids)
            keys = [k for k in self._jobs if wanted is None or k[0] in wanted]
            for key in keys:
                if count >= limit:
                    break
                job_id = key[0]
                entry = self._jobs[key]
                lines = entry.lines[: limit - count]
                if len(lines) == len(entry.lines):
                    del self._jobs[key]
                else:
                    entry.lines = entry.lines[len(lines) :]
                batch: dict[str, Any] = {"job": job_id, "token": entry.token, "lines": lines}
                if entry.dropped:
                    batch["dropped"], entry.dropped = entry.dropped, 0
                batches.append(batch)
                count += len(lines)
        return batches, count

    def done(
        self,
        batches: Sequence[dict[str, Any]],
        count: int,
        verdicts: Sequence[dict[str, Any]] | None,
    ) -> None:
        """Lines taken are off the books: shipped (per ``verdicts``), or lost (None)."""
        with self._lock:
            self._held -= count
        if verdicts is None:
            self.dropped += count
        else:
            for batch, verdict in zip(batches, verdicts, strict=False):
                if verdict.get("accepted"):
                    self.shipped += len(batch["lines"])
                else:
                    self.rejected += len(batch["lines"])
        if self._settled is not None and self._held == 0 and not self._jobs:
            self._settled.set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._sent = asyncio.Event()
        if self._held or self._jobs:
            self._wake.set()
        self._task = self._loop.create_task(self._run(), name="tether-logs")

    async def flush(self, timeout: float) -> bool:
        """Send everything buffered now; False if ``timeout`` ran out first."""
        if self._wake is None or self._settled is None:
            return not self._held
        self._urgent = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while self._held or self._jobs:
                    self._settled.clear()
                    self._wake.set()
                    await self._settled.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._held:
            log.warning("%d captured log lines were not shipped", self._held)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.linger > 0 and not self._urgent:
                # Meanwhile, lines of jobs that end ride their results.
                await asyncio.sleep(self.linger)
            while True:
                batches, count = self.take()
                if not batches:
                    break
                await self._send(batches, count)
            if self._settled is not None and not self._held and not self._jobs:
                self._settled.set()

    async def after_in_flight(self, job_ids: Sequence[str]) -> None:
        """Until no line of ``job_ids`` is in a request (their next lines go after)."""
        while self._in_flight and self._sent is not None:
            if not any(j in self._in_flight for j in job_ids):
                return
            await self._sent.wait()

    def sending(self, batches: Sequence[dict[str, Any]]) -> None:
        for batch in batches:
            self._in_flight[batch["job"]] = self._in_flight.get(batch["job"], 0) + 1

    def sent(self, batches: Sequence[dict[str, Any]]) -> None:
        for batch in batches:
            left = self._in_flight.get(batch["job"], 0) - 1
            if left > 0:
                self._in_flight[batch["job"]] = left
            else:
                self._in_flight.pop(batch["job"], None)
        if self._sent is not None:
            done, self._sent = self._sent, asyncio.Event()
            done.set()

    async def ship_job(self, job_id: str) -> None:
        """Ship the lines buffered for ``job_id`` now (a workflow, before a durable write)."""
        if self.transport is None:
            return
        await self.after_in_flight([job_id])
        batches, count = self.take([job_id])
        if batches:
            await self._send(batches, count)

    async def _send(self, batches: list[dict[str, Any]], count: int) -> None:
        transport = self.transport
        assert transport is not None
        verdicts: list[dict[str, Any]] | None = None
        self.sending(batches)
        try:
            self.requests += 1
            verdicts = await retrying(lambda: transport.logs(batches), what="shipping log lines")
        except TetherError as exc:  # refused for good: these lines are lost, say so once
            log.warning("the API refused %d log lines: %s", count, exc.message)
        finally:
            self.sent(batches)
            self.done(batches, count, verdicts)


class LogCapture(logging.Handler):
    """The root-logger handler: lines logged under a ``SCOPE`` go to its shipper."""

    def handle(self, record: logging.LogRecord) -> bool:
        # Skips Handler.handle's lock: emit touches only the shipper, which locks itself.
        where = SCOPE.get()
        if where is None or record.levelno < self.level:
            return False
        if where.replaying is not None and where.replaying():
            return False
        self.emit_for(where, record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        where = SCOPE.get()
        if where is not None:
            self.emit_for(where, record)

    def emit_for(self, where: LogScope, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not fail the job
            message = f"{record.msg!r} % {record.args!r}"
        line: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "job": where.job_id,
            "attempt": where.attempt,
        }
        if record.exc_info and record.exc_info[1] is not None:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info))
        elif record.exc_text:
            line["exc"] = record.exc_text
        if where.step is not None:
            line["step"] = where.step
            line["step_name"] = where.step_name
        # Encoded once, here: the API stores the text as it is.
        where.shipper.put(where, orjson.dumps(line, default=str).decode())


_installed: list[tuple[LogCapture, int, list[logging.Handler]]] = []
_users = 0
_install_lock = threading.Lock()


@contextlib.contextmanager
def capturing(level: int = logging.INFO) -> Iterator[None]:
    """The capture on the root logger for the block (one handler per process, however
    many workers run in it). If the root logger's level would filter out ``level``, it
    is lowered, and the root's other handlers keep the old threshold, so what reaches
    stderr does not change."""
    global _users
    with _install_lock:
        _users += 1
        if _users == 1:
            root = logging.getLogger()
            old_level = root.level
            pinned: list[logging.Handler] = []
            if root.level > level:
                for h in root.handlers:
                    if h.level == logging.NOTSET:
                        h.setLevel(old_level)
                        pinned.append(h)
                root.setLevel(level)
            handler = LogCapture(level)
            root.addHandler(handler)
            _installed.append((handler, old_level, pinned))
    try:
        yield
    finally:
        with _install_lock:
            _users -= 1
            if _users == 0 and _installed:
                handler, old_level, pinned = _installed.pop()
                root = logging.getLogger()
                root.removeHandler(handler)
                for h in pinned:
                    h.setLevel(logging.NOTSET)
                root.setLevel(old_level)
