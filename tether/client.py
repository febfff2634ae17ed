"""Clients of the tether API: ``AsyncClient``, and ``Client``, its blocking shell.

    async with tether.AsyncClient() as client:          # $TETHER_URL or localhost:8000,
                                                        # key: $TETHER_API_KEY (api_key=)
        job = await client.enqueue("resize", {"w": 64})
        result = await client.call("resize", {"w": 64}, wait=10)

    with tether.Client() as client:                     # the same, from plain sync code
        result = client.call("resize", {"w": 64}, wait=10)

Two words, never mixed: ``wait=`` is how long this client waits for a job (or run) to
finish; ``timeout=`` is a job's own time limit on its worker (``enqueue``, as in the HTTP
body). ``timeout=`` on ``wait``, ``call``, ``wait_run`` and ``result`` still works as the
old name of ``wait=``, with a DeprecationWarning. docs/client.md is the user's guide.

Errors come back typed: the API's ``{"error": {...}}`` answers as the matching
``tether.errors`` class (``NotFound``, ``ValidationFailed``, ``Unauthorized`` for a
missing or wrong key, ``Forbidden`` for a role that may not...), an unreachable API as
``ApiUnavailable``, a job that failed as ``JobFailed`` (its error attached), a wait that
ran out as ``ResultTimeout``, and a ``call`` whose job nobody can run as
``NoLiveMachine``.

``Client`` runs one ``AsyncClient`` on a private event-loop thread: every method is the
async one, called through ``_blocking``, so the two can never drift apart.
"""

from __future__ import annotations

import asyncio
import functools
import math
import secrets
import threading
import time
import warnings
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Container,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, Self, TypeVar
from urllib.parse import quote

import httpx

from tether._client_http import HttpSession
from tether.errors import JobFailed, NoLiveMachine, ResultTimeout, RunFailed
from tether.protocol import (
    MAX_BATCH,
    MAX_GET_WAIT,
    TERMINAL,
    DeliveryList,
    DeliveryOut,
    FunctionLimits,
    FunctionLimitsOut,
    FunctionList,
    FunctionOut,
    JobBatchOut,
    JobCreate,
    JobList,
    JobOut,
    LogLine,
    LogPage,
    MachineList,
    MachineOut,
    RunList,
    RunOut,
    ScheduleFired,
    ScheduleList,
    ScheduleOut,
    Timeline,
    TimelineEvent,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from tether.protocol import RUN_TERMINAL as RUN_STATUSES_TERMINAL

P = ParamSpec("P")
R = TypeVar("R")

# The terminal statuses, as the strings the API answers with (one definition: protocol).
JOB_TERMINAL = frozenset(s.value for s in TERMINAL)
RUN_TERMINAL = frozenset(s.value for s in RUN_STATUSES_TERMINAL)
WAIT_SLACK = 10.0  # seconds an HTTP request may take beyond the wait it asked for
# Seconds a call's job may stay queued before the client checks that a live machine
# serves its function (and fails with NoLiveMachine if none does).
NO_MACHINE_CHECK = 5.0


class _Unset:
    """The default of a deprecated keyword: tells "not given" from None."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET = _Unset()


def _wait_arg(method: str, wait: float | None, timeout: float | _Unset | None) -> float | None:
    """``wait``, or the deprecated ``timeout`` it replaced on the waiting methods."""
    if isinstance(timeout, _Unset):
        return wait
    warnings.warn(
        f"{method}(timeout=...) is deprecated: say wait=... (how long to wait for the "
        "result); timeout= is a job's own time limit, given to enqueue",
        DeprecationWarning,
        stacklevel=3,
    )
    return timeout if wait is None else wait


def _waited(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"


def _seg(value: str) -> str:
    """A path segment: an id can never reach another route."""
    return quote(str(value), safe="")


def _new_key() -> str:
    """An idempotency key of the client's own (128 random bits): a request carrying one
    may be sent again when its connection drops before the answer, and still makes one
    job (``HttpSession.request``'s ``repeatable``)."""
    return secrets.token_hex(16)


Expires = float | timedelta | datetime


def _expires(value: Expires) -> float | str:
    """An expiry as the body carries it: seconds from now, or an ISO 8601 time."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # A naive time is ambiguous (local? UTC?): refused here, not guessed.
            raise ValueError("expires= needs an aware datetime (with a tzinfo) or seconds")
        return value.isoformat()
    if not math.isfinite(value):
        # orjson would send NaN as null, i.e. "never expires": refused, not turned around.
        raise ValueError(f"expires= must be a finite number of seconds, not {value!r}")
    return value


def _job_body(
    function: str,
    input: Any,
    idempotency_key: str | None,
    delay: float | None,
    max_attempts: int | None,
    timeout: float | None,
    expires: Expires | None = None,
    priority: int = 0,
    concurrency_key: str | None = None,
    concurrency_limit: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "function": function,
        "input": input,
        "idempotency_key": idempotency_key or _new_key(),
    }
    # Sent only when used: an older API refuses fields it does not know.
    if priority:
        body["priority"] = priority
    if concurrency_key is not None:
        body["concurrency_key"] = concurrency_key
    if concurrency_limit is not None:
        body["concurrency_limit"] = concurrency_limit
    if delay:
        body["delay"] = delay
    if max_attempts is not None:
        body["max_attempts"] = max_attempts
    if timeout is not None:
        body["timeout"] = timeout
    if expires is not None:
        body["expires"] = _expires(expires)
    return body


T = TypeVar("T")


async def _follow_cursor(
    page: Callable[[int, str | None], Awaitable[tuple[list[T], str | None]]], limit: int
) -> list[T]:
    """Up to ``limit`` items from ``page(n, cursor)``, following next cursors (1,000 a page
    at most, the API's cap)."""
    found: list[T] = []
    cursor: str | None = None
    while len(found) < limit:
        items, cursor = await page(min(1000, limit - len(found)), cursor)
        found += items
        if cursor is None:
            break
    return found[:limit]


class _HasStatus(Protocol):
    status: str


S = TypeVar("S", bound=_HasStatus)


async def _until_finished(
    kind: str,
    record_id: str,
    get: Callable[..., Awaitable[S]],
    terminal: Container[str],
    wait: float | None,
) -> S:
    """``get(record_id, wait=...)`` in waits of up to MAX_GET_WAIT until the record is
    finished; ``ResultTimeout`` once ``wait`` seconds (None: no limit) have passed."""
    started = time.monotonic()
    deadline = None if wait is None else started + wait
    while True:
        left = MAX_GET_WAIT if deadline is None else deadline - time.monotonic()
        record = await get(record_id, wait=max(0.0, min(left, MAX_GET_WAIT)))
        if record.status in terminal:
            return record
        if deadline is not None and time.monotonic() >= deadline:
            raise ResultTimeout(
                f"{kind} {record_id} is still {record.status} after waiting "
                f"{_waited(started)} (wait={wait:g}); it goes on",
                details={"id": record_id, "status": record.status, "waited": wait},
            )


def _outcome(run: RunOut) -> Any:
    """A finished run's result, or ``RunFailed``."""
    if run.status == "completed":
        return run.result
    reason = f": {run.error.type}: {run.error.message}" if run.error else ""
    raise RunFailed(
        f"run {run.id} ({run.workflow}) {run.status}{reason}",
        run=run,
        error=run.error,
        details={"id": run.id, "status": run.status},
    )


class AsyncClient:
    """An asyncio client of one tether API (keep-alive connections, pooled)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        # api_key: else $TETHER_API_KEY, else ./.tether/admin.key (`tether dev`).
        self._http = HttpSession(
            url, timeout=timeout, headers=headers, transport=transport, api_key=api_key
        )

    @property
    def url(self) -> str:
        return self._http.url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- jobs ------------------------------------------------------------------------

    async def enqueue(
        self,
        function: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        delay: float | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        expires: Expires | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        concurrency_limit: int | None = None,
    ) -> JobOut:
        """Submit a job; ``delay`` and ``timeout`` are seconds. With an idempotency key
        already used for this function and this input, returns that job instead of a new
        one (without one, the client makes one up, so a request it sends again is still
        one job); the key reused with another input raises ``IdempotencyKeyReused``.
        ``expires`` (seconds, a ``timedelta`` or an aware ``datetime``): not started by
        then, the job ends ``expired`` and never runs. ``priority`` (-100..100, default
        0): higher is claimed first. ``concurrency_key``: the job runs only while fewer
        than ``concurrency_limit`` (default: the function's key limit, else 1) jobs of
        that key run (docs/queue-features.md)."""
        body = _job_body(
            function,
            input,
            idempotency_key,
            delay,
            max_attempts,
            timeout,
            expires,
            priority,
            concurrency_key,
            concurrency_limit,
        )
        job, _ = await self._enqueue(body)
        return job

    async def _enqueue(self, body: dict[str, Any]) -> tuple[JobOut, bool]:
        """POST /v1/jobs: the job, and whether this request created it (201) rather than
        found it under its idempotency key (200)."""
        status, raw = await self._http.request_status(
            "POST", "/v1/jobs", body=body, repeatable=True
        )
        return JobOut.model_validate_json(raw), status == 201

    async def enqueue_many(self, jobs: Iterable[JobCreate | Mapping[str, Any]]) -> list[JobOut]:
        """Submit many jobs, up to 1,000 per request; each item is a ``JobCreate`` or a
        dict of ``enqueue``'s arguments (``function``, ``input``, ...)."""
        bodies = [
            j.model_dump(exclude_defaults=True) if isinstance(j, JobCreate) else dict(j)
            for j in jobs
        ]
        for body in bodies:
            body.setdefault("idempotency_key", None)
            body["idempotency_key"] = body["idempotency_key"] or _new_key()
            if body.get("expires") is not None:
                body["expires"] = _expires(body["expires"])
        out: list[JobOut] = []
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start : start + MAX_BATCH]
            raw = await self._http.request(
                "POST", "/v1/jobs/batch", body={"jobs": chunk}, repeatable=True
            )
            out.extend(JobBatchOut.model_validate_json(raw).jobs)
        return out

    # -- limits (docs/queue-features.md) ---------------------------------------------

    async def set_limits(self, function: str, limits: FunctionLimits) -> FunctionLimitsOut:
        """Set a function's concurrency and rate limits (an admin key's right); a field
        left None is no limit."""
        raw = await self._http.request(
            "PUT",
            f"/v1/limits/{function}",
            body=limits.model_dump(exclude_none=True),
            repeatable=True,
        )
        return FunctionLimitsOut.model_validate_json(raw)

    async def get_limits(self, function: str) -> FunctionLimitsOut:
        raw = await self._http.request("GET", f"/v1/limits/{function}")
        return FunctionLimitsOut.model_validate_json(raw)

    async def clear_limits(self, function: str) -> FunctionLimitsOut:
        raw = await self._http.request("DELETE", f"/v1/limits/{function}", repeatable=True)
        return FunctionLimitsOut.model_validate_json(raw)

    async def get(self, job_id: str, *, wait: float | None = None) -> JobOut:
        """A job; with ``wait`` (seconds, up to 60), the API answers as soon as the job
        finishes, or with its current state when the wait runs out."""
        timeout = None if not wait else wait + WAIT_SLACK
        raw = await self._http.request(
            "GET", f"/v1/jobs/{_seg(job_id)}", params={"wait": wait or None}, timeout=timeout
        )
        return JobOut.model_validate_json(raw)

    async def wait(
        self,
        job_id: str,
        *,
        wait: float | None = None,
        timeout: float | _Unset | None = UNSET,
    ) -> JobOut:
        """The job once it has finished (completed, failed, cancelled, dead or expired); raises
        ``ResultTimeout`` if it has not after ``wait`` seconds (None: no limit).
        ``timeout=`` is the deprecated name of ``wait=``."""
        wait = _wait_arg("wait", wait, timeout)
        return await _until_finished("job", job_id, self.get, JOB_TERMINAL, wait)

    async def call(
        self,
        function: str,
        input: Any = None,
        *,
        wait: float | None = None,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        timeout: float | _Unset | None = UNSET,
        expires: Expires | None = None,
    ) -> Any:
        """Enqueue a job and wait for its result. Raises ``JobFailed`` (with the job's
        error) if it ends any other way than completed, ``ResultTimeout`` if it has not
        finished within ``wait`` seconds (None: no limit; the job itself goes on), and
        ``NoLiveMachine`` if the job is still queued after 5 s and no live machine
        serves its function (it stays queued). ``timeout=`` is the deprecated name of
        ``wait=``; the job's time limit is the one its function registered. A job not
        started by ``expires`` ends ``expired``, raised as ``JobFailed``."""
        wait = _wait_arg("call", wait, timeout)
        # One request enqueues and waits (POST /v1/jobs?wait=S): a round trip fewer than
        # enqueue-then-GET. A job still unfinished after that wait is waited for by id.
        started = time.monotonic()
        deadline = None if wait is None else started + wait
        first = NO_MACHINE_CHECK if wait is None else max(0.0, min(wait, NO_MACHINE_CHECK))
        body = _job_body(function, input, idempotency_key, None, max_attempts, None, expires)
        raw = await self._http.request(
            "POST",
            "/v1/jobs",
            body=body,
            params={"wait": first or None},
            timeout=first + WAIT_SLACK if first else None,
            repeatable=True,
        )
        job = JobOut.model_validate_json(raw)
        while job.status not in JOB_TERMINAL:
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(
                    f"job {job.id} ({function}) is still {job.status} after waiting "
                    f"{_waited(started)} (wait={wait:g}); it goes on",
                    details={"id": job.id, "status": job.status, "waited": wait},
                )
            if job.status == "queued" and not await self._served(function):
                raise NoLiveMachine(
                    f"job {job.id} ({function}) is still queued after {_waited(started)} "
                    f"and no live machine serves {function!r}: start a worker that serves "
                    "it (the job stays queued and runs then)",
                    details={"id": job.id, "status": job.status, "function": function},
                )
            left = MAX_GET_WAIT if deadline is None else deadline - time.monotonic()
            job = await self.get(job.id, wait=max(0.0, min(left, MAX_GET_WAIT)))
        return _job_result(job)

    async def _served(self, function: str) -> bool:
        """Whether some live machine serves ``function`` now."""
        return any(function in m.functions for m in await self.machines())

    async def cancel(self, job_id: str) -> JobOut:
        """Cancel a job: at once if it waits; a running one stops at its machine's next
        heartbeat (the record says ``cancel_requested`` until then)."""
        raw = await self._http.request("POST", f"/v1/jobs/{_seg(job_id)}/cancel")
        return JobOut.model_validate_json(raw)

    async def list_jobs_page(
        self,
        *,
        status: str | None = None,
        function: str | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobList:
        """One page of jobs, newest first; ``next_cursor`` reads the next."""
        params = _listing_params(tags, created_after, created_before, limit, cursor)
        params.update(status=status, function=function)
        raw = await self._http.request("GET", "/v1/jobs", params=params)
        return JobList.model_validate_json(raw)

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        function: str | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
    ) -> list[JobOut]:
        """Up to ``limit`` jobs, newest first, following the pages' cursors."""

        async def page(n: int, cursor: str | None) -> tuple[list[JobOut], str | None]:
            got = await self.list_jobs_page(
                status=status,
                function=function,
                tags=tags,
                created_after=created_after,
                created_before=created_before,
                limit=n,
                cursor=cursor,
            )
            return got.jobs, got.next_cursor

        return await _follow_cursor(page, limit)

    # -- machines, functions, health --------------------------------------------------

    async def machines(self) -> list[MachineOut]:
        raw = await self._http.request("GET", "/v1/machines")
        return MachineList.model_validate_json(raw).machines

    async def functions(self) -> list[FunctionOut]:
        raw = await self._http.request("GET", "/v1/functions")
        return FunctionList.model_validate_json(raw).functions

    async def health(self) -> Any:
        return await self._http.json("GET", "/healthz")

    async def metrics(self) -> str:
        """The answering API process's ``/metrics`` (Prometheus text format)."""
        return (await self._http.request("GET", "/metrics")).decode()

    # -- runs (durable workflows) -----------------------------------------------------

    async def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        id: str | None = None,
        version: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> RunOut:
        """Start a run of ``workflow``; ``id`` is its idempotency key (the same id is the
        same run), ``version`` pins a version (default: the newest served), ``tags``
        label it for listings."""
        # The run's id is its idempotency key: one made up here makes the request safe to
        # send again if its connection drops before the answer.
        body: dict[str, Any] = {"workflow": workflow, "input": input, "id": id or _new_key()}
        if tags:
            body["tags"] = tags
        if version is not None:
            body["version"] = version
        raw = await self._http.request("POST", "/v1/runs", body=body, repeatable=True)
        return RunOut.model_validate_json(raw)

    async def execute(
        self,
        workflow: str,
        input: Any = None,
        *,
        wait: float | None = None,
        id: str | None = None,
        version: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> Any:
        """Start a run and wait for its result, in one request while it finishes within
        MAX_GET_WAIT (``POST /v1/runs?wait=S``): ``start`` and ``result`` in one round
        trip. Raises like ``result``: ``RunFailed``, ``ResultTimeout`` after ``wait``
        seconds (None: no limit; the run goes on)."""
        started = time.monotonic()
        first = MAX_GET_WAIT if wait is None else max(0.0, min(wait, MAX_GET_WAIT))
        body: dict[str, Any] = {"workflow": workflow, "input": input, "id": id or _new_key()}
        if tags:
            body["tags"] = tags
        if version is not None:
            body["version"] = version
        raw = await self._http.request(
            "POST",
            "/v1/runs",
            body=body,
            params={"wait": first or None},
            timeout=first + WAIT_SLACK if first else None,
            repeatable=True,
        )
        run = RunOut.model_validate_json(raw)
        if run.status not in RUN_TERMINAL:
            left = None if wait is None else max(0.0, wait - (time.monotonic() - started))
            return await self.result(run.id, wait=left)
        return _outcome(run)

    async def get_run(self, run_id: str, *, wait: float | None = None) -> RunOut:
        """A run; with ``wait`` (seconds), the API answers as soon as it finishes."""
        timeout = None if not wait else wait + WAIT_SLACK
        raw = await self._http.request(
            "GET", f"/v1/runs/{_seg(run_id)}", params={"wait": wait or None}, timeout=timeout
        )
        return RunOut.model_validate_json(raw)

    async def wait_run(
        self,
        run_id: str,
        *,
        wait: float | None = None,
        timeout: float | _Unset | None = UNSET,
    ) -> RunOut:
        """The run once it has finished; ``ResultTimeout`` after ``wait`` seconds (None:
        no limit). ``timeout=`` is the deprecated name of ``wait=``."""
        wait = _wait_arg("wait_run", wait, timeout)
        return await _until_finished("run", run_id, self.get_run, RUN_TERMINAL, wait)

    async def result(
        self,
        run_id: str,
        *,
        wait: float | None = None,
        timeout: float | _Unset | None = UNSET,
    ) -> Any:
        """The run's result once it completes; ``RunFailed`` if it failed or was
        cancelled, ``ResultTimeout`` if it has not finished within ``wait`` seconds.
        ``timeout=`` is the deprecated name of ``wait=``."""
        return _outcome(await self.wait_run(run_id, wait=_wait_arg("result", wait, timeout)))

    async def approve(
        self,
        run_id: str,
        key: str,
        approved: bool = True,
        *,
        comment: str | None = None,
        data: Any = None,
    ) -> RunOut:
        """Decide the approval ``key`` a run waits for (or will wait for). The decision
        records this client's API key name as the decider."""
        body = {"approved": approved, "comment": comment, "data": data}
        raw = await self._http.request(
            "POST",
            f"/v1/runs/{_seg(run_id)}/approvals/{_seg(key)}",
            body={k: v for k, v in body.items() if v is not None or k == "approved"},
        )
        return RunOut.model_validate_json(raw)

    async def deny(
        self,
        run_id: str,
        key: str,
        *,
        comment: str | None = None,
        data: Any = None,
    ) -> RunOut:
        """``approve(..., approved=False)``."""
        return await self.approve(run_id, key, False, comment=comment, data=data)

    async def signal(self, run_id: str, name: str, payload: Any = None) -> RunOut:
        """Send the signal ``name`` to a run."""
        raw = await self._http.request(
            "POST",
            f"/v1/runs/{_seg(run_id)}/signals/{_seg(name)}",
            body={"payload": payload},
        )
        return RunOut.model_validate_json(raw)

    async def cancel_run(self, run_id: str) -> RunOut:
        raw = await self._http.request("POST", f"/v1/runs/{_seg(run_id)}/cancel")
        return RunOut.model_validate_json(raw)

    async def retry_run(self, run_id: str) -> RunOut:
        """Run a failed run again from where it failed (completed steps are kept)."""
        raw = await self._http.request("POST", f"/v1/runs/{_seg(run_id)}/retry")
        return RunOut.model_validate_json(raw)

    async def timeline(self, run_id: str) -> list[TimelineEvent]:
        raw = await self._http.request("GET", f"/v1/runs/{_seg(run_id)}/timeline")
        return Timeline.model_validate_json(raw).events

    async def logs(
        self,
        id: str,
        *,
        run: bool = False,
        after: str | None = None,
        limit: int = 100,
        wait: float | None = None,
    ) -> LogPage:
        """A page of a job's log lines (a run's with ``run=True``), oldest first, after
        cursor ``after``; with ``wait`` (seconds, up to 60) the API answers as soon as
        there is a line or the job or run has ended. The page's ``cursor`` reads on."""
        kind = "runs" if run else "jobs"
        timeout = None if not wait else wait + WAIT_SLACK
        raw = await self._http.request(
            "GET",
            f"/v1/{kind}/{_seg(id)}/logs",
            params={"after": after, "limit": limit, "wait": wait or None},
            timeout=timeout,
        )
        return LogPage.model_validate_json(raw)

    async def follow_logs(
        self, id: str, *, run: bool = False, after: str | None = None, wait: float = 20.0
    ) -> AsyncIterator[LogLine]:
        """Every log line of a job (or run) from after ``after``, as they arrive (long
        polls of ``wait`` seconds), until it has ended and every line is read."""
        while True:
            page = await self.logs(id, run=run, after=after, limit=1000, wait=wait)
            for line in page.lines:
                yield line
            after = page.cursor
            if page.finished and not page.lines:
                return

    async def list_runs_page(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        parent: str | None = None,
    ) -> RunList:
        """One page of runs, newest first; ``next_cursor`` reads the next. ``parent``:
        only the child runs of that run (``ctx.child``)."""
        params = _listing_params(tags, created_after, created_before, limit, cursor)
        params.update(status=status, workflow=workflow, parent=parent)
        raw = await self._http.request("GET", "/v1/runs", params=params)
        return RunList.model_validate_json(raw)

    async def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        parent: str | None = None,
    ) -> list[RunOut]:
        """Up to ``limit`` runs, newest first, following the pages' cursors. ``parent``:
        only the child runs of that run."""

        async def page(n: int, cursor: str | None) -> tuple[list[RunOut], str | None]:
            got = await self.list_runs_page(
                status=status,
                workflow=workflow,
                parent=parent,
                tags=tags,
                created_after=created_after,
                created_before=created_before,
                limit=n,
                cursor=cursor,
            )
            return got.runs, got.next_cursor

        return await _follow_cursor(page, limit)

    # -- schedules --------------------------------------------------------------------

    async def schedule(
        self,
        name: str,
        *,
        function: str | None = None,
        workflow: str | None = None,
        cron: str | None = None,
        every: float | None = None,
        input: Any = None,
        timezone: str = "UTC",
        misfire: str = "skip",
        grace: float = 60,
        max_attempts: int | None = None,
        timeout: float | None = None,
        paused: bool = False,
        source: Literal["api", "worker"] = "api",
    ) -> ScheduleOut:
        """Create the schedule ``name`` (or redefine it): ``cron`` or ``every`` seconds,
        starting a job of ``function`` or a run of ``workflow`` at each tick."""
        body = {
            "name": name, "function": function, "workflow": workflow, "cron": cron,
            "every": every, "input": input, "timezone": timezone, "misfire": misfire,
            "grace": grace, "max_attempts": max_attempts, "timeout": timeout,
            "paused": paused, "source": source,
        }  # fmt: skip
        raw = await self._http.request("POST", "/v1/schedules", body=body)
        return ScheduleOut.model_validate_json(raw)

    async def list_schedules(self) -> list[ScheduleOut]:
        raw = await self._http.request("GET", "/v1/schedules")
        return ScheduleList.model_validate_json(raw).schedules

    async def get_schedule(self, name: str) -> ScheduleOut:
        raw = await self._http.request("GET", f"/v1/schedules/{_seg(name)}")
        return ScheduleOut.model_validate_json(raw)

    async def pause_schedule(self, name: str) -> ScheduleOut:
        raw = await self._http.request("POST", f"/v1/schedules/{_seg(name)}/pause")
        return ScheduleOut.model_validate_json(raw)

    async def resume_schedule(self, name: str) -> ScheduleOut:
        raw = await self._http.request("POST", f"/v1/schedules/{_seg(name)}/resume")
        return ScheduleOut.model_validate_json(raw)

    async def trigger_schedule(self, name: str, *, key: str | None = None) -> ScheduleFired:
        """Start the schedule's job or run now; the same ``key`` starts it once."""
        body = {"key": key} if key is not None else {}
        raw = await self._http.request("POST", f"/v1/schedules/{_seg(name)}/trigger", body=body)
        return ScheduleFired.model_validate_json(raw)

    async def delete_schedule(self, name: str) -> None:
        await self._http.request("DELETE", f"/v1/schedules/{_seg(name)}")

    # -- webhooks (admin keys; docs/webhooks.md) --------------------------------------

    async def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> WebhookCreated:
        """POST the namespace's run ``events`` (default: awaiting approval, completed,
        failed) to ``url``; the answer's ``secret`` (made up unless given) is shown once."""
        body: dict[str, Any] = {"url": url, "description": description}
        if events is not None:
            body["events"] = list(events)
        if secret is not None:
            body["secret"] = secret
        raw = await self._http.request("POST", "/v1/webhooks", body=body)
        return WebhookCreated.model_validate_json(raw)

    async def list_webhooks(self) -> list[WebhookOut]:
        raw = await self._http.request("GET", "/v1/webhooks")
        return WebhookList.model_validate_json(raw).webhooks

    async def get_webhook(self, webhook_id: str) -> WebhookOut:
        raw = await self._http.request("GET", f"/v1/webhooks/{_seg(webhook_id)}")
        return WebhookOut.model_validate_json(raw)

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._http.request("DELETE", f"/v1/webhooks/{_seg(webhook_id)}")

    async def webhook_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[DeliveryOut]:
        """The webhook's newest deliveries: state, attempts, last answer, next try."""
        raw = await self._http.request(
            "GET", f"/v1/webhooks/{_seg(webhook_id)}/deliveries", params={"limit": limit}
        )
        return DeliveryList.model_validate_json(raw).deliveries


def _listing_params(
    tags: dict[str, str] | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, "cursor": cursor}
    if created_after is not None:
        params["created_after"] = created_after.isoformat()
    if created_before is not None:
        params["created_before"] = created_before.isoformat()
    if tags:
        params["tag"] = [f"{k}:{v}" for k, v in tags.items()]
    return params


def _job_result(job: JobOut) -> Any:
    if job.status == "completed":
        return job.result
    reason = f": {job.error.type}: {job.error.message}" if job.error else ""
    raise JobFailed(
        f"job {job.id} ({job.function}) {job.status}{reason}",
        job=job,
        error=job.error,
        details={"id": job.id, "status": job.status},
    )


# -- the blocking shell ------------------------------------------------------------------


class _LoopThread:
    """A private event loop on a daemon thread, to run coroutines from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="tether-client", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a blocking tether.Client method was called from its own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: do not leave the call running
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Client, P], R]:
    """The blocking twin of an ``AsyncClient`` method: same signature, same docs."""

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._thread.run(method(self._async, *args, **kwargs))

    functools.update_wrapper(call, method)
    return call


class Client:
    """The blocking client: each method is ``AsyncClient``'s, run on a private loop."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        self._thread = _LoopThread()

        async def make() -> AsyncClient:
            return AsyncClient(
                url, timeout=timeout, headers=headers, transport=transport, api_key=api_key
            )

        try:
            self._async = self._thread.run(make())
        except BaseException:
            self._thread.close()
            raise
        self._closed = False

    @property
    def url(self) -> str:
        return self._async.url

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._thread.run(self._async.aclose())
        finally:
            self._thread.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    enqueue = _blocking(AsyncClient.enqueue)
    enqueue_many = _blocking(AsyncClient.enqueue_many)
    set_limits = _blocking(AsyncClient.set_limits)
    get_limits = _blocking(AsyncClient.get_limits)
    clear_limits = _blocking(AsyncClient.clear_limits)
    get = _blocking(AsyncClient.get)
    wait = _blocking(AsyncClient.wait)
    call = _blocking(AsyncClient.call)
    cancel = _blocking(AsyncClient.cancel)
    list_jobs = _blocking(AsyncClient.list_jobs)
    list_jobs_page = _blocking(AsyncClient.list_jobs_page)
    machines = _blocking(AsyncClient.machines)
    functions = _blocking(AsyncClient.functions)
    health = _blocking(AsyncClient.health)
    metrics = _blocking(AsyncClient.metrics)
    start = _blocking(AsyncClient.start)
    get_run = _blocking(AsyncClient.get_run)
    wait_run = _blocking(AsyncClient.wait_run)
    result = _blocking(AsyncClient.result)
    execute = _blocking(AsyncClient.execute)
    approve = _blocking(AsyncClient.approve)
    deny = _blocking(AsyncClient.deny)
    signal = _blocking(AsyncClient.signal)
    cancel_run = _blocking(AsyncClient.cancel_run)
    retry_run = _blocking(AsyncClient.retry_run)
    timeline = _blocking(AsyncClient.timeline)
    logs = _blocking(AsyncClient.logs)
    list_runs = _blocking(AsyncClient.list_runs)
    schedule = _blocking(AsyncClient.schedule)
    list_schedules = _blocking(AsyncClient.list_schedules)
    get_schedule = _blocking(AsyncClient.get_schedule)
    pause_schedule = _blocking(AsyncClient.pause_schedule)
    resume_schedule = _blocking(AsyncClient.resume_schedule)
    trigger_schedule = _blocking(AsyncClient.trigger_schedule)
    delete_schedule = _blocking(AsyncClient.delete_schedule)
    create_webhook = _blocking(AsyncClient.create_webhook)
    list_webhooks = _blocking(AsyncClient.list_webhooks)
    get_webhook = _blocking(AsyncClient.get_webhook)
    delete_webhook = _blocking(AsyncClient.delete_webhook)
    webhook_deliveries = _blocking(AsyncClient.webhook_deliveries)
    list_runs_page = _blocking(AsyncClient.list_runs_page)
