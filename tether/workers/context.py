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
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from tether._client_http import dumps
from tether.errors import InvalidTransition, LeaseNotHeld, NotFound
from tether.limits import MAX_TIMEOUT, MIN_TIMEOUT
from tether.queue.runs import ActivationState, ChildSpec, Wait


class NonDeterminismError(Exception):
    """The workflow's code asks for a different step than its history recorded at the
    same position (the code changed under a running run). Fails the run, never retried."""

    retryable = False


class StepFailed(Exception):
    """A step raised (after its retries); on replay the recorded error is raised again
    as this same type, so workflow code sees the same thing live and on replay."""

    def __init__(self, name: str, position: int, error: dict[str, Any]) -> None:
        self.name = name
        self.position = position
        self.error = error
        self.error_type = str(error.get("type", "Error"))
        super().__init__(f"step {name!r} failed: {self.error_type}: {error.get('message', '')}")


class ChildFailed(Exception):
    """A child job ended failed, dead (its attempts used up) or cancelled."""

    def __init__(self, function: str, position: int, record: dict[str, Any]) -> None:
        self.function = function
        self.position = position
        self.job_id = str(record.get("job", ""))
        self.status = str(record.get("job_status", "failed"))
        self.error: dict[str, Any] = record.get("error") or {}
        super().__init__(
            f"child {function!r} ({self.job_id}) ended {self.status}: "
            f"{self.error.get('type', 'Error')}: {self.error.get('message', '')}"
        )


class WaitTimeout(TimeoutError):
    """No approval or signal arrived before the wait's timeout."""

    def __init__(self, kind: str, name: str, position: int) -> None:
        self.kind = kind
        self.name = name
        self.position = position
        super().__init__(f"no {kind} {name!r} arrived before its timeout")


class Suspend(BaseException):
    """Raised inside an activation that must wait; the runner turns it into a
    suspension of the run. Not an ``Exception``, so workflow code does not catch it."""

    def __init__(self, wait: Wait, children: Sequence[ChildSpec] = ()) -> None:
        super().__init__(wait.kind)
        self.wait = wait
        self.children = list(children)


class Abandon(BaseException):
    """The control plane refused a write: this activation is stale (another took over)
    or the run ended (cancelled, timed out). Stop quietly; nothing more is ours."""


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

    async def begin(self, *, max_attempts: int, timeout_ms: int | None) -> ActivationState: ...

    async def record_step(
        self, position: int, record: dict[str, Any], logs: list[dict[str, Any]]
    ) -> None: ...

    async def complete(self, result: Any, logs: list[dict[str, Any]]) -> str: ...

    async def fail(
        self,
        error: dict[str, Any],
        *,
        failed_position: int | None,
        retryable: bool,
        logs: list[dict[str, Any]],
    ) -> str: ...

    async def suspend(
        self, wait: Wait, children: Sequence[ChildSpec], logs: list[dict[str, Any]]
    ) -> str: ...


def _seconds(value: timedelta | float | int) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def json_round_trip(value: Any) -> Any:
    """The value as its JSON round trip: what a replay returns, so live runs see the
    same types (dicts, lists) as replays."""
    return orjson.loads(dumps(value))


class ChildCall:
    """A child job requested with ``ctx.call``: await it alone, or pass several to
    ``ctx.gather``. Its position is taken when it is created."""

    def __init__(
        self,
        ctx: WorkflowContext,
        position: int,
        function: str,
        input: Any,
        max_attempts: int | None,
        timeout_ms: int | None,
    ) -> None:
        self.ctx = ctx
        self.position = position
        self.function = function
        self.input = input
        self.max_attempts = max_attempts
        self.timeout_ms = timeout_ms

    def __await__(self) -> Generator[Any, None, Any]:
        return self.ctx._children([self], return_exceptions=False).__await__()

    def spec(self) -> ChildSpec:
        return ChildSpec(
            self.position, self.function, self.input, self.max_attempts, self.timeout_ms
        )


@dataclass
class WorkflowContext:
    """What a workflow function gets as ``ctx``."""

    run_id: str
    workflow: str
    version: int
    input: Any
    backend: RunBackend
    steps: dict[int, dict[str, Any]]
    attempt: int = 1  # 1 + failed attempts under the workflow's retry policy
    worker: dict[str, Any] = field(default_factory=dict)  # the worker's arq-style ctx
    position: int = 0
    failed_position: int | None = None
    fatal: NonDeterminismError | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_activation(
        cls, state: ActivationState, backend: RunBackend, worker: dict[str, Any] | None = None
    ) -> WorkflowContext:
        return cls(
            run_id=state.run_id,
            workflow=state.workflow,
            version=state.version,
            input=state.input,
            backend=backend,
            steps=dict(state.steps),
            attempt=state.failures + 1,
            worker=worker or {},
        )

    # -- replay ---------------------------------------------------------------------

    @property
    def replaying(self) -> bool:
        """True while the code walks through positions the history already has."""
        return self.position in self.steps

    def _take(self, kind: str, name: str) -> tuple[int, dict[str, Any] | None]:
        if self.fatal is not None:
            raise self.fatal  # the run is failing: nothing more may happen
        pos = self.position
        self.position += 1
        record = self.steps.get(pos)
        if record is not None and (record.get("kind") != kind or record.get("name") != name):
            self.fatal = NonDeterminismError(
                f"run {self.run_id} ({self.workflow} v{self.version}) diverged from its "
                f"history at position {pos}: the history has {record.get('kind')} "
                f"{record.get('name')!r} there, but the code now asks for {kind} {name!r}. "
                "Changing the steps of a running workflow needs a new workflow version."
            )
            raise self.fatal
        return pos, record

    def _drain_logs(self) -> list[dict[str, Any]]:
        logs, self.logs = self.logs, []
        return logs

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
            self.failed_position = pos
            raise StepFailed(name, pos, record.get("error") or {})
        for attempt in range(retries + 1):
            try:
                if inspect.iscoroutinefunction(fn):
                    value = await fn(*args, **kwargs)
                else:
                    value = await asyncio.to_thread(fn, *args, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                result = json_round_trip(value)
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
                self.failed_position = pos
                raise StepFailed(name, pos, error) from exc
        await self._record(
            pos, {"name": name, "kind": "step", "status": "completed", "result": result}
        )
        return result

    async def _record(self, pos: int, record: dict[str, Any]) -> None:
        await self.backend.record_step(pos, record, self._drain_logs())
        self.steps[pos] = record

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

    async def gather(self, *calls: ChildCall, return_exceptions: bool = False) -> list[Any]:
        """Wait for several children started with ``call`` (fan-out, fan-in): their
        results in order. With ``return_exceptions``, a failed child's ``ChildFailed``
        takes its place instead of being raised."""
        for c in calls:
            if not isinstance(c, ChildCall):
                raise TypeError(f"ctx.gather takes ctx.call(...) objects, not {c!r}")
        results: list[Any] = await self._children(list(calls), return_exceptions=True)
        for item in results:
            if isinstance(item, ChildFailed) and not return_exceptions:
                self.failed_position = item.position
                raise item
        return results

    async def _children(self, calls: list[ChildCall], *, return_exceptions: bool) -> Any:
        new: list[ChildSpec] = []
        waiting: list[int] = []
        for c in calls:
            record = self.steps.get(c.position)
            if record is None:
                new.append(c.spec())
                waiting.append(c.position)
            elif record.get("status") == "pending":
                waiting.append(c.position)
        if waiting:
            raise Suspend(Wait("children", positions=tuple(waiting)), new)
        results: list[Any] = []
        for c in calls:
            record = self.steps[c.position]
            if record.get("status") == "completed":
                results.append(record.get("result"))
                continue
            failure = ChildFailed(c.function, c.position, record)
            if not return_exceptions:
                self.failed_position = c.position
                raise failure
            results.append(failure)
        return results[0] if len(calls) == 1 and not return_exceptions else results

    async def sleep(self, duration: timedelta | float) -> None:
        """Sleep durably: the activation ends and the run wakes (anywhere) when due."""
        pos, record = self._take("sleep", "sleep")
        if record is not None and record.get("status") == "completed":
            return
        ms = max(0, round(_seconds(duration) * 1000))
        raise Suspend(Wait("sleep", position=pos, name="sleep", ms=ms))

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
        if record is not None and record.get("status") == "completed":
            return Approval.from_record(record.get("result") or {})
        if record is not None and record.get("status") == "failed":
            self.failed_position = pos
            raise WaitTimeout("approval", key, pos)
        info: dict[str, Any] = {}
        if prompt is not None:
            info["prompt"] = prompt
        if data is not None:
            info["data"] = json_round_trip(data)
        raise Suspend(Wait("approval", position=pos, name=key, ms=self._ms(timeout), info=info))

    async def wait_for_signal(self, name: str, *, timeout: timedelta | float | None = None) -> Any:
        """Wait for signal ``name`` (``POST /v1/runs/{id}/signals/{name}``) and return its
        payload. Signals sent earlier are buffered and consumed in order."""
        pos, record = self._take("signal", name)
        if record is not None and record.get("status") == "completed":
            return record.get("result")
        if record is not None and record.get("status") == "failed":
            self.failed_position = pos
            raise WaitTimeout("signal", name, pos)
        raise Suspend(Wait("signal", position=pos, name=name, ms=self._ms(timeout)))

    @staticmethod
    def _ms(timeout: timedelta | float | None) -> int | None:
        return None if timeout is None else max(0, round(_seconds(timeout) * 1000))

    def log(self, message: str, **fields: Any) -> None:
        """A structured line on the run's timeline, sent with the next durable write.
        Lines from code that is only being replayed are not logged again."""
        if self.replaying:
            return
        self.logs.append({"message": message, **json_round_trip(fields)})
