"""The ``ctx`` a workflow receives, and the replay that makes it durable.

Every primitive takes the next *position* (0, 1, 2, ... in the order the code calls
them). On replay, a position that has a record returns what is recorded, so a completed
step never runs twice; a new position runs (``step``) or suspends the activation
(``call``, ``gather``, ``sleep``, ``wait_for_*``) until the control plane wakes the run.
A record whose kind or name differs from what the code asks for at that position means
the code changed under a running workflow: the run fails with ``NonDeterminismError``
naming both steps.

Suspension is an exception (``Suspend``, a ``BaseException`` like ``CancelledError``),
so an ``except Exception`` in workflow code does not swallow it; ``finally`` blocks do
run when an activation suspends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, Protocol

import orjson

from tether import tracing
from tether._client_http import dumps
from tether.errors import InvalidTransition, LeaseNotHeld, NotFound, PayloadTooLarge
from tether.limits import MAX_TIMEOUT, MIN_TIMEOUT
from tether.protocol import (
    ActivationState,
    ApprovalWait,
    ChildrenWait,
    ChildSpec,
    Resume,
    SignalWait,
    SleepWait,
    Wait,
    parse_traceparent,
)
from tether.workers.logs import step_scope


class NonDeterminismError(Exception):
    """The workflow's code asks for a different step than its history recorded at the
    same position (the code changed under a running run). Fails the run, never retried."""

    retryable = False


class StepFailed(Exception):
    """A step raised (after its retries); on replay the recorded error is raised again
    as this same type, so workflow code sees the same thing live and on replay."""

    def __init__(
        self, name: str, position: int, error: dict[str, Any], *, retryable: bool = True
    ) -> None:
        self.name = name
        self.position = position
        self.error = error
        # A result that is not JSON fails the same way on every retry: the run does not
        # retry it automatically (a manual retry still can, after a fix).
        self.retryable = retryable and error.get("type") != "NotJsonSerializable"
        self.error_type = str(error.get("type", "Error"))
        self.resume = Resume((position,), position)
        super().__init__(f"step {name!r} failed: {self.error_type}: {error.get('message', '')}")


class ChildFailed(Exception):
    """A child job (or child run) ended failed, dead (its attempts used up) or
    cancelled, or it was
    ``refused`` (no machine ever registered its function: no job was started). A
    refused child fails a run that does not handle it at once, without the workflow's
    automatic retries; a manual retry tries it again."""

    def __init__(self, function: str, position: int, record: dict[str, Any]) -> None:
        self.function = function
        self.position = position
        self.job_id = str(record.get("job") or record.get("run") or "")
        self.status = str(record.get("job_status", "failed"))
        self.error: dict[str, Any] = record.get("error") or {}
        self.retryable = self.status != "refused"
        # A retry reruns this child; ctx.gather widens it to every failed child it waited on.
        self.resume = Resume((position,), position)
        what = "was refused" if self.status == "refused" else f"({self.job_id}) ended {self.status}"
        super().__init__(
            f"child {function!r} {what}: "
            f"{self.error.get('type', 'Error')}: {self.error.get('message', '')}"
        )


class WaitTimeout(TimeoutError):
    """No approval or signal arrived before the wait's timeout."""

    def __init__(self, kind: str, name: str, position: int) -> None:
        self.kind = kind
        self.name = name
        self.position = position
        self.resume = Resume((position,), position)
        super().__init__(f"no {kind} {name!r} arrived before its timeout")


def resume_point(exc: BaseException) -> Resume | None:
    """Where a retry of a run that ``exc`` failed resumes: at the step, wait or gather
    whose failure went unhandled, found in ``exc`` or the exceptions it was raised from or
    while handling (a compensation that re-raises). None when no primitive failed
    (plain code raised): a retry replays every record and runs the code after them. A
    failure the code caught and got past is never a resume point: Python clears it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StepFailed | ChildFailed | WaitTimeout):
            return current.resume
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return None


class Suspend(BaseException):
    """Raised inside an activation that must wait; the runner turns it into a
    suspension of the run. Not an ``Exception``, so workflow code does not catch it."""

    def __init__(self, wait: Wait, children: Sequence[ChildSpec] = ()) -> None:
        super().__init__(wait.kind)
        self.wait = wait
        self.children = list(children)


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new``; the runner starts the run over with ``input``.
    Not an ``Exception``, so workflow code does not catch it."""

    def __init__(self, input: Any) -> None:
        super().__init__("continue as new")
        self.input = input


class Abandon(BaseException):
    """The control plane refused a write: this activation is stale (another took over)
    or the run ended (cancelled, timed out). Stop quietly; nothing more is ours."""


class Evicted(Abandon):
    """Raised into a run kept suspended in a worker's memory (sticky replay) that the
    worker lets go of (its cache is full, the run went on elsewhere, the worker stops):
    the code unwinds, and nothing it does from here on is recorded."""


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """The control plane refusing a write (stale activation, finished run, unknown run)
    ends the activation quietly: it becomes ``Abandon``."""
    try:
        yield
    except (LeaseNotHeld, InvalidTransition, NotFound) as exc:
        raise Abandon(exc.message) from exc


@dataclass(frozen=True, slots=True)
class Approval:
    """A human's decision on ``wait_for_approval``."""

    approved: bool
    by: str | None
    comment: str | None
    data: Any
    at: datetime | None

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> Approval:
        at = value.get("at")
        return cls(
            approved=bool(value.get("approved")),
            by=value.get("by"),
            comment=value.get("comment"),
            data=value.get("data"),
            at=datetime.fromtimestamp(at / 1000, UTC) if isinstance(at, int | float) else None,
        )


class RunBackend(Protocol):
    """Where one activation reports: the HTTP API (workers) or a RunEngine directly
    (in-process tests). Bound to the activation's job and fencing token; each method is
    one atomic transition, and raises ``Abandon`` when the control plane refuses it."""

    @property
    def run_id(self) -> str: ...

    @property
    def job_id(self) -> str:
        """The activation's job."""
        ...

    async def begin(
        self,
        *,
        max_attempts: int,
        timeout_ms: int | None,
        resume: str | None = None,
        positions: Sequence[int] = (),
    ) -> ActivationState:
        """``resume``/``positions``: sticky replay (see sticky.py)."""
        ...

    async def record_step(
        self, position: int, record: dict[str, Any], logs: list[dict[str, Any]]
    ) -> None: ...

    async def complete(self, result: Any, logs: list[dict[str, Any]]) -> str: ...

    async def fail(
        self,
        error: dict[str, Any],
        *,
        resume: Resume | None,
        retryable: bool,
        logs: list[dict[str, Any]],
    ) -> str: ...

    async def suspend(
        self, wait: Wait, children: Sequence[ChildSpec], logs: list[dict[str, Any]]
    ) -> str: ...

    async def continue_as_new(self, input: Any, logs: list[dict[str, Any]]) -> str: ...


def _seconds(value: timedelta | float | int) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Unrecordable(Exception):
    def __init__(self, error: dict[str, Any], *, retryable: bool) -> None:
        super().__init__(error["message"])
        self.error = error
        self.retryable = retryable


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


# Log lines are numbered (position * LOG_SLOTS + their rank at that position); the run
# keeps the number of the last one written (``log_mark``), so a replay skips exactly
# the lines already on the timeline, wherever they stand. The number travels as the
# line's first field, "@", which the scripts strip off.
LOG_SLOTS = 1_000_000
LOG_MARK = "@"


def json_round_trip(value: Any) -> Any:
    """The value as its JSON round trip: what a replay returns, so live runs see the
    same types (dicts, lists) as replays."""
    return orjson.loads(dumps(value))


class ChildCall:
    """A child job requested with ``ctx.call``, or a child run with ``ctx.child``: await
    it alone, or pass several (of either kind) to ``ctx.gather``. Its position is taken
    when it is created."""

    def __init__(
        self,
        ctx: WorkflowContext,
        position: int,
        function: str,
        input: Any,
        max_attempts: int | None,
        timeout_ms: int | None,
        *,
        workflow: bool = False,
        version: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.position = position
        self.function = function
        self.input = input
        self.max_attempts = max_attempts
        self.timeout_ms = timeout_ms
        self.workflow = workflow
        self.version = version

    def __await__(self) -> Generator[Any, None, Any]:
        return self.ctx._children([self], return_exceptions=False).__await__()

    def spec(self) -> ChildSpec:
        return ChildSpec(
            self.position,
            self.function,
            self.input,
            self.max_attempts,
            self.timeout_ms,
            self.workflow,
            self.version,
        )


@dataclass(slots=True)
class _Replay:
    """The runner's state of one activation's replay, kept off ``WorkflowContext`` so
    workflow code cannot change it: where the report goes, the history, the next
    position, the log lines waiting for the next durable write."""

    backend: RunBackend
    steps: dict[int, dict[str, Any]]
    position: int = 0
    fatal: NonDeterminismError | None = None  # set once the code diverged from its history
    logs: list[dict[str, Any]] = field(default_factory=list)
    log_mark: int = -1  # number of the last log line the run has (see LOG_SLOTS)
    max_payload_bytes: int | None = None  # the API's limit on one step's result
    log_at: tuple[int, int] = (-1, -1)  # (position, rank) of the last ctx.log call
    # Set by a runner that drives the code as a task (workflow.py): a primitive that
    # must wait hands it the Suspend here and stays suspended on ``resumed`` until the
    # runner either resumes it with the records that arrived (sticky replay) or unwinds
    # it (raising the Suspend into it, or Evicted). None: the primitive raises Suspend.
    outbox: asyncio.Future[Suspend] | None = None
    resumed: asyncio.Future[None] | None = None
    # The log scope its code's task runs under (tether/workers/logs.py); a run kept in
    # memory is re-pointed at each activation that resumes it.
    log_scope: Any = None
    evicted: bool = False  # unwound for good: no primitive may act any more
    # The last waits (or children) the code got past with records from the history (or,
    # kept in memory, with the records that arrived): what this activation resumed from,
    # whose spans it reports (tracing), then forgets.
    resumed_from: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def drain_logs(self) -> list[dict[str, Any]]:
        logs, self.logs = self.logs, []
        return logs

    async def wait(self, request: Suspend) -> None:
        """Wait for what ``request`` names: return once the runner resumed this code
        (the awaited records are in ``steps`` now), or raise (the code unwinds)."""
        outbox = self.outbox
        if outbox is None or outbox.done():
            raise request
        self.resumed = asyncio.get_running_loop().create_future()
        outbox.set_result(request)
        await self.resumed


class WorkflowContext:
    """What a workflow function gets as ``ctx``: who it is (read-only) and the durable
    primitives. Replay state is the runner's (``_replay``), not the workflow's."""

    __slots__ = ("_attempt", "_input", "_replay", "_run_id", "_version", "_worker", "_workflow")

    def __init__(
        self,
        run_id: str,
        workflow: str,
        version: int,
        input: Any,
        replay: _Replay,
        *,
        attempt: int = 1,
        worker: dict[str, Any] | None = None,
    ) -> None:
        self._run_id = run_id
        self._workflow = workflow
        self._version = version
        self._input = input
        self._replay = replay
        self._attempt = attempt
        self._worker = worker or {}

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workflow(self) -> str:
        return self._workflow

    @property
    def version(self) -> int:
        return self._version

    @property
    def input(self) -> Any:
        return self._input

    @property
    def attempt(self) -> int:
        """1 + failed attempts under the workflow's retry policy."""
        return self._attempt

    @property
    def traceparent(self) -> str | None:
        """The W3C traceparent to pass on from here (e.g. to an outgoing HTTP call): the
        activation's span when spans are exported, else the run's trace context, which
        is the one its creator gave (``traceparent`` header) or one made up."""
        value = self._worker.get("traceparent")
        return value if isinstance(value, str) else None

    @property
    def worker(self) -> dict[str, Any]:
        """The worker's arq-style ctx (its startup hook's resources)."""
        return self._worker

    @classmethod
    def for_activation(
        cls, state: ActivationState, backend: RunBackend, worker: dict[str, Any] | None = None
    ) -> WorkflowContext:
        replay = _Replay(
            backend,
            dict(state.steps),
            log_mark=state.log_mark,
            max_payload_bytes=state.max_payload_bytes,
        )
        return cls(
            state.run_id,
            state.workflow,
            state.version,
            state.input,
            replay,
            attempt=state.failures + 1,
            worker=worker,
        )

    # -- replay ---------------------------------------------------------------------

    @property
    def replaying(self) -> bool:
        """True while the code walks through positions the history already has."""
        return self._replay.position in self._replay.steps

    def _take(self, kind: str, name: str) -> tuple[int, dict[str, Any] | None]:
        if self._replay.evicted:
            raise Evicted(f"run {self.run_id} was let go of by this worker")
        if self._replay.fatal is not None:
            raise self._replay.fatal  # the run is failing: nothing more may happen
        pos = self._replay.position
        self._replay.position += 1
        record = self._replay.steps.get(pos)
        if record is not None and (record.get("kind") != kind or record.get("name") != name):
            self._replay.fatal = NonDeterminismError(
                f"run {self.run_id} ({self.workflow} v{self.version}) diverged from its "
                f"history at position {pos}: the history has {record.get('kind')} "
                f"{record.get('name')!r} there, but the code now asks for {kind} {name!r}. "
                "Changing the steps of a running workflow needs a new workflow version."
            )
            raise self._replay.fatal
        return pos, record

    def _drain_logs(self) -> list[dict[str, Any]]:
        return self._replay.drain_logs()

    # -- primitives -----------------------------------------------------------------

    async def step(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retries: int = 0,
        backoff: float = 0.5,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` once, durably: its result (or error) is recorded
        before the workflow goes on, and every replay returns the record. A failure is
        retried up to ``retries`` times here (exponential backoff from ``backoff``
        seconds), then raised as ``StepFailed``. Sync functions run in a thread."""
        pos, record = self._take("step", name)
        if record is not None:
            if record.get("status") == "completed":
                return record.get("result")
            raise StepFailed(name, pos, record.get("error") or {})
        if tracing.TRACER is None:
            return await self._run_step(pos, name, fn, args, kwargs, retries, backoff)
        attributes = {
            "tether.run.id": self.run_id,
            "tether.step.name": name,
            "tether.step.position": pos,
        }
        # Under this activation's span, named explicitly: code kept in memory across
        # activations (sticky replay) runs in a task that still carries the first one's.
        parent = parse_traceparent(self.traceparent)
        span = tracing.start(f"tether.step {name}", parent, attributes)
        try:
            with tracing.current(span):
                return await self._run_step(pos, name, fn, args, kwargs, retries, backoff)
        except BaseException as exc:
            tracing.fail(span, exc)
            raise
        finally:
            span.end()

    async def _run_step(
        self,
        pos: int,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retries: int,
        backoff: float,
    ) -> Any:
        value: Any = None
        for attempt in range(retries + 1):
            try:
                # Its log lines carry the step (to_thread copies the context along).
                with step_scope(pos, name):
                    if inspect.iscoroutinefunction(fn):
                        value = await fn(*args, **kwargs)
                    else:
                        value = await asyncio.to_thread(fn, *args, **kwargs)
                        if inspect.isawaitable(value):
                            value = await value
                break
            except Exception as exc:
                if attempt < retries:
                    delay = backoff * 2**attempt
                    await asyncio.sleep(delay / 2 + random.random() * delay / 2)
                    continue
                error = {
                    "type": type(exc).__name__,
                    "message": str(exc) or type(exc).__name__,
                    "attempts": attempt + 1,
                }
                await self._record(
                    pos, {"name": name, "kind": "step", "status": "failed", "error": error}
                )
                raise StepFailed(name, pos, error) from exc
        # The function ran: a result that cannot be recorded fails the step without
        # running it again (its side effects happened; it would return the same).
        try:
            result = self._recordable(name, value)
        except _Unrecordable as bad:
            await self._record(
                pos, {"name": name, "kind": "step", "status": "failed", "error": bad.error}
            )
            raise StepFailed(name, pos, bad.error, retryable=bad.retryable) from None
        try:
            await self._record(
                pos, {"name": name, "kind": "step", "status": "completed", "result": result}
            )
        except PayloadTooLarge as exc:  # the record's envelope tipped it over the limit
            error = {"type": "PayloadTooLarge", "message": f"step {name!r}: {exc.message}"}
            await self._record(
                pos, {"name": name, "kind": "step", "status": "failed", "error": error}
            )
            raise StepFailed(name, pos, error) from None
        return result

    def _recordable(self, name: str, value: Any) -> Any:
        """``value`` as the JSON a replay returns, or ``_Unrecordable``: not JSON (a set,
        Decimal, bytes, int keys, an integer over 64 bits), NaN or Infinity (JSON has
        neither: they would come back as null), or over the API's payload limit."""
        try:
            data = dumps(value)
        except TypeError as exc:
            raise _Unrecordable(
                {
                    "type": "NotJsonSerializable",
                    "message": f"step {name!r} returned a {type(value).__name__} that is "
                    f"not JSON-serializable: {exc}",
                },
                retryable=False,
            ) from None
        # orjson writes NaN and Infinity as null: look for them only if a null is there.
        if b"null" in data and _non_finite(value):
            raise _Unrecordable(
                {
                    "type": "NotJsonSerializable",
                    "message": f"step {name!r} returned NaN or Infinity, which JSON cannot "
                    "hold (they would come back as null)",
                },
                retryable=False,
            )
        if (
            self._replay.max_payload_bytes is not None
            and len(data) > self._replay.max_payload_bytes
        ):
            raise _Unrecordable(
                {
                    "type": "PayloadTooLarge",
                    "message": f"step {name!r} returned {len(data)} bytes of JSON; the "
                    f"limit is {self._replay.max_payload_bytes}",
                    "size": len(data),
                    "limit": self._replay.max_payload_bytes,
                },
                retryable=True,
            )
        return orjson.loads(data)

    async def _record(self, pos: int, record: dict[str, Any]) -> None:
        await self._replay.backend.record_step(pos, record, self._drain_logs())
        self._replay.steps[pos] = record

    def call(
        self,
        function: str,
        input: Any = None,
        *,
        max_attempts: int | None = None,
        timeout: timedelta | float | None = None,
    ) -> ChildCall:
        """A child job of ``function`` that may run on any machine serving it. Await the
        result; its failure (after its retries) raises ``ChildFailed``."""
        timeout_ms = None if timeout is None else round(_seconds(timeout) * 1000)
        if timeout_ms is not None and not 1 <= timeout_ms <= round(MAX_TIMEOUT * 1000):
            # Under 1 ms it would round to 0, which means no timeout at all.
            raise ValueError(
                f"timeout must be from {MIN_TIMEOUT} to {MAX_TIMEOUT:g} seconds, not {timeout!r}"
            )
        pos, _ = self._take("call", function)
        return ChildCall(self, pos, function, input, max_attempts, timeout_ms)

    def child(self, workflow: str, input: Any = None, *, version: int | None = None) -> ChildCall:
        """A child run of ``workflow`` (a durable run of its own, ``<run>:w<position>``;
        ``version`` None: the newest a live machine serves). Await its result; its
        failure (or cancellation) raises ``ChildFailed``. Cancelling this run cancels it."""
        pos, _ = self._take("child", workflow)
        return ChildCall(self, pos, workflow, input, None, None, workflow=True, version=version)

    async def gather(self, *calls: ChildCall, return_exceptions: bool = False) -> list[Any]:
        """Wait for several children started with ``call`` (fan-out, fan-in): their
        results in order. With ``return_exceptions``, a failed child's ``ChildFailed``
        takes its place instead of being raised."""
        for c in calls:
            if not isinstance(c, ChildCall):
                raise TypeError(f"ctx.gather takes ctx.call(...) objects, not {c!r}")
        results: list[Any] = await self._children(list(calls), return_exceptions=True)
        failures = [item for item in results if isinstance(item, ChildFailed)]
        if failures:
            # One retry reruns every child of this gather that failed (and only those).
            resume = Resume(tuple(f.position for f in failures), max(c.position for c in calls))
            for failure in failures:
                failure.resume = resume
            if not return_exceptions:
                raise failures[0]
        return results

    async def _children(self, calls: list[ChildCall], *, return_exceptions: bool) -> Any:
        while True:
            new: list[ChildSpec] = []
            waiting: list[int] = []
            for c in calls:
                record = self._replay.steps.get(c.position)
                if record is None:
                    new.append(c.spec())
                    waiting.append(c.position)
                elif record.get("status") == "pending":
                    waiting.append(c.position)
            if not waiting:
                break
            await self._replay.wait(Suspend(ChildrenWait(tuple(waiting)), new))
        self._replay.resumed_from = [(c.position, self._replay.steps[c.position]) for c in calls]
        results: list[Any] = []
        for c in calls:
            record = self._replay.steps[c.position]
            if record.get("status") == "completed":
                results.append(record.get("result"))
                continue
            failure = ChildFailed(c.function, c.position, record)
            if not return_exceptions:
                raise failure
            results.append(failure)
        return results[0] if len(calls) == 1 and not return_exceptions else results

    async def sleep(self, duration: timedelta | float) -> None:
        """Sleep durably: the activation ends and the run wakes (anywhere) when due."""
        pos, record = self._take("sleep", "sleep")
        ms = max(0, round(_seconds(duration) * 1000))
        while record is None or record.get("status") != "completed":
            await self._replay.wait(Suspend(SleepWait(pos, ms)))
            record = self._replay.steps.get(pos)
        self._replay.resumed_from = [(pos, record)]

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until ``when`` (timezone-aware; naive means UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        await self.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))

    async def wait_for_approval(
        self,
        key: str,
        *,
        prompt: str | None = None,
        data: Any = None,
        timeout: timedelta | float | None = None,
    ) -> Approval:
        """Wait for a human's decision on ``key`` (``POST /v1/runs/{id}/approvals/{key}``).
        A decision made before the run gets here is kept and returned at once. Raises
        ``WaitTimeout`` if none comes within ``timeout``."""
        pos, record = self._take("approval", key)
        while True:
            if record is not None and record.get("status") in ("completed", "failed"):
                self._replay.resumed_from = [(pos, record)]
            if record is not None and record.get("status") == "completed":
                return Approval.from_record(record.get("result") or {})
            if record is not None and record.get("status") == "failed":
                raise WaitTimeout("approval", key, pos)
            shown = None if data is None else json_round_trip(data)
            await self._replay.wait(
                Suspend(ApprovalWait(pos, key, self._ms(timeout), prompt, shown))
            )
            record = self._replay.steps.get(pos)

    async def wait_for_signal(self, name: str, *, timeout: timedelta | float | None = None) -> Any:
        """Wait for signal ``name`` (``POST /v1/runs/{id}/signals/{name}``) and return its
        payload. Signals sent earlier are buffered and consumed in order."""
        pos, record = self._take("signal", name)
        while True:
            if record is not None and record.get("status") in ("completed", "failed"):
                self._replay.resumed_from = [(pos, record)]
            if record is not None and record.get("status") == "completed":
                return record.get("result")
            if record is not None and record.get("status") == "failed":
                raise WaitTimeout("signal", name, pos)
            await self._replay.wait(Suspend(SignalWait(pos, name, self._ms(timeout))))
            record = self._replay.steps.get(pos)

    @staticmethod
    def _ms(timeout: timedelta | float | None) -> int | None:
        return None if timeout is None else max(0, round(_seconds(timeout) * 1000))

    def continue_as_new(self, input: Any = None) -> NoReturn:
        """End this run's history here and start it over from the top with ``input``:
        the same run id, an empty history (so a replay costs what one iteration costs),
        decisions and buffered signals kept. For unbounded loops: do one iteration, then
        ``ctx.continue_as_new(state)``."""
        if self._replay.evicted:
            raise Evicted(f"run {self.run_id} was let go of by this worker")
        if self._replay.fatal is not None:
            raise self._replay.fatal
        raise ContinueAsNew(json_round_trip(input))

    def log(self, message: str, **fields: Any) -> None:
        """A structured line on the run's timeline, sent with the next durable write.
        Each line is written once: a replay skips the lines the run already has,
        wherever they stand (between ``call`` and its ``await`` too). A retry writes
        again the lines of the code it runs again."""
        pos, rank = self._replay.log_at
        rank = rank + 1 if pos == self._replay.position else 0
        self._replay.log_at = (self._replay.position, rank)
        number = self._replay.position * LOG_SLOTS + min(rank, LOG_SLOTS - 1)
        if number <= self._replay.log_mark:
            return
        fields.pop(LOG_MARK, None)
        self._replay.logs.append({LOG_MARK: number, "message": message, **json_round_trip(fields)})
