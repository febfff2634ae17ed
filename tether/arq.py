"""arq's enqueuing API on tether: change one import, keep the code.

    from tether.arq import create_pool        # was: from arq import create_pool

    redis = await create_pool(RedisSettings())  # the settings are accepted and ignored
    job = await redis.enqueue_job("download", url, _defer_by=10)
    print(await job.status(), await job.result(timeout=30))

The pool talks to the tether API ($TETHER_URL, or ``create_pool(url=...)``) with
tether's client, never to Redis. Arguments travel as a call (``{"$args": [...],
"$kwargs": {...}}``), so the function gets them as arq passes them:
``download(ctx, url)``. docs/arq.md has the table of what maps and what differs.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tether.client import AsyncClient, _job_body, _job_result
from tether.errors import IdempotencyConflict, InvalidTransition, NotFound, ResultTimeout
from tether.protocol import ARGS_KEY, KWARGS_KEY, MAX_GET_WAIT, JobOut
from tether.protocol import TERMINAL as JOB_TERMINAL

__all__ = ["ArqPool", "Job", "JobDef", "JobResult", "JobStatus", "create_pool"]

TERMINAL = frozenset(s.value for s in JOB_TERMINAL)
# arq's own defaults (arq.constants): the queue every arq worker and pool use unless told
# otherwise, and how long past its due time a job not started yet is kept (1 day).
ARQ_QUEUE = "arq:queue"
ARQ_EXPIRES_EXTRA_MS = 86_400_000


def _warn_queue(name: str) -> None:
    if name != ARQ_QUEUE:
        # tether routes a job to the workers serving its function: a queue of arq's
        # would separate nothing here, so saying nothing would mislead (docs/arq.md).
        warnings.warn(
            f"queue name {name!r} is ignored: tether routes jobs by function name, so "
            "every worker serving the function may take the job (docs/arq.md)",
            UserWarning,
            stacklevel=3,
        )


class JobStatus(StrEnum):
    """arq's job statuses (``arq.jobs.JobStatus``), mapped from tether's."""

    deferred = "deferred"  # tether: delayed (a delay, or a retry's backoff)
    queued = "queued"
    in_progress = "in_progress"  # tether: running
    complete = "complete"  # tether: completed, failed, cancelled, dead or expired
    not_found = "not_found"


_STATUS = {
    "delayed": JobStatus.deferred,
    "queued": JobStatus.queued,
    "running": JobStatus.in_progress,
}


@dataclass(frozen=True, slots=True)
class JobDef:
    """What ``Job.info()`` answers, with arq's field names."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job_try: int
    enqueue_time: datetime | None
    score: int | None  # when it is (or was) due to run, ms
    job_id: str


@dataclass(frozen=True, slots=True)
class JobResult(JobDef):
    """``Job.info()`` of a finished job."""

    success: bool
    result: Any  # the return value, or the error (type and message)
    start_time: datetime | None
    finish_time: datetime | None
    queue_name: str


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _call_of(job: JobOut) -> tuple[tuple[Any, ...], dict[str, Any]]:
    value = job.input
    if isinstance(value, dict) and value.keys() == {ARGS_KEY, KWARGS_KEY}:
        return tuple(value[ARGS_KEY]), dict(value[KWARGS_KEY])
    # A job submitted the tether way: its input is its one argument.
    return ((value,) if value is not None else ()), {}


class Job:
    """arq's ``Job``: a handle on a job by id (``Job(job_id, pool)`` works as in arq)."""

    def __init__(self, job_id: str, redis: ArqPool, _queue_name: str = "", **_: Any) -> None:
        self.job_id = job_id
        self._pool = redis
        self._queue_name = _queue_name or redis.default_queue_name

    def __repr__(self) -> str:
        return f"<tether.arq.Job {self.job_id}>"

    async def _get(self, wait: float | None = None) -> JobOut | None:
        try:
            return await self._pool.client.get(self.job_id, wait=wait)
        except NotFound:
            return None

    async def result(
        self, timeout: float | None = None, *, poll_delay: float = 0.5, pole_delay: Any = None
    ) -> Any:
        """The job's return value once it has finished; raises ``JobFailed`` (type and
        message of the job's error: tether does not pickle exceptions) if it failed, and
        ``ResultTimeout`` (a ``TimeoutError``, as arq raises) after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = MAX_GET_WAIT if deadline is None else deadline - time.monotonic()
            job = await self._get(wait=max(0.0, min(left, MAX_GET_WAIT)))
            if job is not None and job.status in TERMINAL:
                return _job_result(job)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(
                    f"job {self.job_id} did not finish within {timeout:g}s",
                    details={"id": self.job_id},
                )
            if job is None:  # not there (yet): the wait above did not wait
                await asyncio.sleep(poll_delay)

    async def status(self) -> JobStatus:
        job = await self._get()
        if job is None:
            return JobStatus.not_found
        return _STATUS.get(job.status, JobStatus.complete)

    async def info(self) -> JobDef | JobResult | None:
        job = await self._get()
        if job is None:
            return None
        args, kwargs = _call_of(job)
        due = job.scheduled_at or job.enqueued_at
        base: dict[str, Any] = {
            "function": job.function,
            "args": args,
            "kwargs": kwargs,
            "job_try": job.attempt,
            "enqueue_time": job.enqueued_at,
            "score": round(due.timestamp() * 1000) if due else None,
            "job_id": job.id,
        }
        if job.status not in TERMINAL:
            return JobDef(**base)
        ok = job.status == "completed"
        return JobResult(
            **base,
            success=ok,
            result=job.result if ok else (job.error.model_dump() if job.error else None),
            start_time=job.started_at,
            finish_time=job.finished_at,
            queue_name=self._queue_name,
        )

    async def abort(self, *, timeout: float | None = None, poll_delay: float = 0.5) -> bool:
        """Cancel the job (a running one is stopped by its machine); ``True`` once it has
        ended cancelled, ``False`` if it finished otherwise or not within ``timeout``."""
        try:
            await self._pool.client.cancel(self.job_id)
        except (NotFound, InvalidTransition):  # gone, or finished already: not aborted
            return False
        try:
            job = await self._pool.client.wait(self.job_id, wait=timeout)
        except ResultTimeout:
            return False
        return job.status == "cancelled"


class ArqPool:
    """What ``create_pool`` returns: arq's ``ArqRedis`` enqueuing methods, on tether."""

    def __init__(
        self,
        client: AsyncClient,
        default_queue_name: str = ARQ_QUEUE,
        expires_extra_ms: int = ARQ_EXPIRES_EXTRA_MS,
    ) -> None:
        self.client = client
        self.default_queue_name = default_queue_name
        self.expires_extra_ms = expires_extra_ms

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: float | timedelta | None = None,
        _expires: float | timedelta | None = None,
        _job_try: int | None = None,
        **kwargs: Any,
    ) -> Job | None:
        """Enqueue ``function(ctx, *args, **kwargs)``. With ``_job_id``, returns
        ``None`` if a job of that id already exists (as arq does, whatever its function
        and arguments); the job's tether id is the one its idempotency key names
        (``Job.job_id``). ``_expires`` (seconds or a ``timedelta``): not started by then,
        the job ends ``expired``; without it, a job not started a day after it was due
        expires, as in arq (``create_pool(expires_extra_ms=)``; 0: never). A queue name
        other than arq's default is ignored with a warning, ``_job_try`` silently
        (docs/arq.md says why)."""
        if _defer_until is not None and _defer_by is not None:
            raise ValueError("use either _defer_until or _defer_by, not both")
        _warn_queue(_queue_name or self.default_queue_name)
        delay = _seconds(_defer_by) or 0.0
        if _defer_until is not None:
            until = _defer_until if _defer_until.tzinfo else _defer_until.replace(tzinfo=UTC)
            delay = (until - datetime.now(UTC)).total_seconds()
        delay = max(0.0, delay)
        # As in arq, an `_expires` of 0 is no expiry of its own: the default applies.
        expires = _seconds(_expires) or None
        if expires is None and self.expires_extra_ms > 0:
            expires = delay + self.expires_extra_ms / 1000
        body = _job_body(
            function,
            {ARGS_KEY: list(args), KWARGS_KEY: kwargs},
            _job_id,
            delay or None,
            None,
            None,
            expires,
        )
        try:
            job, created = await self.client._enqueue(body)
        except IdempotencyConflict:
            # The id names a job of another function or with other arguments: arq
            # answers None whenever the id exists, and so does this pool.
            return None
        if _job_id is not None and not created:
            return None
        return Job(job.id, self, _queue_name or self.default_queue_name)

    async def aclose(self) -> None:
        await self.client.aclose()

    close = aclose  # arq's ArqRedis is closed with either

    async def __aenter__(self) -> ArqPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def create_pool(
    settings_: Any = None,
    *,
    retry: int = 0,
    job_serializer: Any = None,
    job_deserializer: Any = None,
    default_queue_name: str = ARQ_QUEUE,
    expires_extra_ms: int = ARQ_EXPIRES_EXTRA_MS,
    url: str | None = None,
) -> ArqPool:
    """arq's ``create_pool``: the Redis settings and serializers are accepted and ignored
    (the pool talks to the API at ``url``, else $TETHER_URL). ``expires_extra_ms``: how
    long past its due time a job enqueued without ``_expires`` may wait to start (arq's
    default, a day; 0 or less: no expiry)."""
    return ArqPool(AsyncClient(url), default_queue_name, expires_extra_ms)
