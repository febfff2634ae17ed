"""Log lines of jobs and runs: machines ship them in, people and programs read them.

``POST /v1/machines/{id}/logs`` (machine role): batches of lines per job, each stored
only if the machine holds or last held that job under the token it names (a forged id,
another machine's job or another namespace's writes nothing). Small batches usually ride
the results request instead (``ResultsRequest.logs``), so a job that logs costs no
extra round trip; this route carries the lines of jobs still running.

``GET /v1/jobs/{id}/logs`` and ``GET /v1/runs/{id}/logs`` (viewer role): a page of lines
after a cursor (``after``, ``limit``). Followable:
- as a long poll: ``?wait=S`` answers as soon as a line arrives or the job or run ends
  (woken by the notification the ingest script publishes, as job waits are);
- as server-sent events: ``Accept: text/event-stream`` or ``?follow=sse``; one ``log``
  event per line (``id:`` is its cursor, so a reconnecting client resumes with
  ``Last-Event-ID``), and one ``end`` event when the job or run has ended.

Bounds (tether/limits.py): lines per request and jobs per request over their limit are
422; a line over ``MAX_LOG_LINE_CHARS`` has its message, exception text and logger name
cut to their limits (marked), never refused. Shorter lines are stored as they came,
without parsing: a machine writes only its own jobs' logs, and every reader takes any
line (``_line_out``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, cast

import orjson
from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from tether.api.error_handlers import change_error_responses, error_responses
from tether.api.notify import Notifier
from tether.api.params import JobId, MachineId, RunId
from tether.api.services import Services
from tether.errors import NotFound, TooManyStreams, ValidationFailed
from tether.limits import (
    MAX_GET_WAIT,
    MAX_LOG_BATCH_LINES,
    MAX_LOG_EXC_CHARS,
    MAX_LOG_LINE_CHARS,
    MAX_LOG_LOGGER_CHARS,
    MAX_LOG_MESSAGE_CHARS,
    MAX_LOG_PAGE,
)
from tether.protocol import (
    RUN_TERMINAL,
    TERMINAL,
    LogBatch,
    LogLine,
    LogPage,
    LogsRequest,
    LogsResponse,
    LogsVerdict,
    ms_to_datetime,
)
from tether.queue.logs import IngestVerdict, LogIngest, LogRead, LogStore

_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")
_TERMINAL = frozenset(s.value for s in TERMINAL)
_RUN_TERMINAL = frozenset(s.value for s in RUN_TERMINAL)
SSE_HEARTBEAT = 15.0  # seconds between comments on a quiet stream (proxies cut idle ones)
MAX_FOLLOWERS = 1000  # SSE log streams per process (more: 503)


def log_store(services: Services) -> LogStore:
    assert services.logs is not None, "Tenants builds every Services with its LogStore"
    return services.logs


def cut(text: str, limit: int, *, keep_end: bool = False) -> str:
    """``text`` within ``limit`` characters, marked where it was cut (a traceback keeps
    its end, where the error is)."""
    if len(text) <= limit:
        return text
    mark = f"…[{len(text) - limit} chars cut]"
    if keep_end:
        return mark + text[-limit:]
    return text[:limit] + mark


def bounded_line(text: str) -> str:
    """A line as stored: as it came if it is short (no parsing: the common case), else
    read and cut to the limits (a message, a traceback, a logger name), or kept as a cut
    message if it is not a JSON object."""
    if len(text) <= MAX_LOG_LINE_CHARS:
        return text
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        return orjson.dumps({"message": cut(text, MAX_LOG_MESSAGE_CHARS)}).decode()
    for key, limit, keep_end in (
        ("message", MAX_LOG_MESSAGE_CHARS, False),
        ("exc", MAX_LOG_EXC_CHARS, True),
        ("logger", MAX_LOG_LOGGER_CHARS, False),
    ):
        value = obj.get(key)
        if isinstance(value, str):
            obj[key] = cut(value, limit, keep_end=keep_end)
    text = orjson.dumps(obj).decode()
    if len(text) > MAX_LOG_MESSAGE_CHARS + MAX_LOG_EXC_CHARS + 4 * MAX_LOG_LINE_CHARS:
        # Other fields were large: keep what a reader shows.
        keep = {k: obj.get(k) for k in ("ts", "level", "logger", "message", "exc", "job")}
        text = orjson.dumps(keep).decode()
    return text


def prepared(batch: LogBatch) -> LogIngest:
    return LogIngest(batch.job, batch.token, [bounded_line(t) for t in batch.lines], batch.dropped)


async def ingest(services: Services, machine: str, batches: list[LogBatch]) -> list[IngestVerdict]:
    """Store the batches; count what machines dropped and what the bounds cut."""
    verdicts = await log_store(services).ingest(machine, [prepared(b) for b in batches])
    metrics = services.metrics
    for batch, verdict in zip(batches, verdicts, strict=True):
        if verdict.accepted:
            metrics.log_lines_dropped["buffer"] += batch.dropped
            metrics.log_lines_dropped["trimmed"] += verdict.trimmed
        else:
            metrics.log_lines_dropped["rejected"] += len(batch.lines) + batch.dropped
    return verdicts


class MachineLogsController(Controller):
    path = "/v1/machines"
    tags = ["machines"]

    @post(
        "/{machine_id:str}/logs",
        operation_id="shipLogs",
        responses=change_error_responses(),
        status_code=200,
        summary="Store captured log lines of jobs this machine holds or held",
        description="Each batch is judged on its own: accepted if the job is, or was last, "
        "leased to this machine under `token`; otherwise rejected (`not_found`, "
        "`lease_not_held`) and nothing of it is stored.",
    )
    async def ship_logs(
        self, machine_id: MachineId, data: LogsRequest, services: Services
    ) -> LogsResponse:
        total = sum(len(b.lines) for b in data.batches)
        check_lines(total)
        verdicts = await ingest(services, machine_id, data.batches)
        return LogsResponse(
            batches=[
                LogsVerdict(job=v.job_id, accepted=v.accepted, trimmed=v.trimmed, reason=v.reason)
                for v in verdicts
            ]
        )


def check_lines(total: int) -> None:
    if total > MAX_LOG_BATCH_LINES:
        raise ValidationFailed(
            f"a request may carry at most {MAX_LOG_BATCH_LINES} log lines; this one has "
            f"{total}: split it",
            details={"field": "batches", "lines": total, "limit": MAX_LOG_BATCH_LINES},
        )


# -- reading ---------------------------------------------------------------------------


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _line_out(kind: str, record_id: str, stored: Any) -> LogLine:
    """A stored line as the API shows it. Lines are stored as machines sent them, so
    every field is read defensively: a wrong type shows as text or not at all."""
    line: dict[str, Any] = stored.line
    at = ms_to_datetime(stored.at_ms)
    assert at is not None
    if stored.captured:
        ts = line.get("ts")
        exc = line.get("exc")
        return LogLine(
            cursor=stored.cursor,
            at=at,
            ts=(
                ms_to_datetime(round(ts * 1000))
                if isinstance(ts, int | float) and not isinstance(ts, bool) and 0 <= ts < 1e11
                else None
            ),
            source="logging",
            level=_str(line.get("level"), "INFO")[:16],
            logger=_str(line.get("logger")),
            message=_str(line.get("message")),
            exc=_str(exc) if exc is not None else None,
            # A job's own log names the job itself, whatever a line says.
            job=record_id if kind == "job" else _str(line.get("job")) or None,
            run=stored.run or (record_id if kind == "run" else None),
            step=_int(line.get("step")),
            step_name=_str(line.get("step_name")) or None,
            attempt=_int(line.get("attempt")),
        )
    fields = {k: v for k, v in line.items() if k != "message"}
    return LogLine(
        cursor=stored.cursor,
        at=at,
        source="ctx",
        level="INFO",
        logger="ctx.log",
        message=_str(line.get("message")),
        run=stored.run or record_id,
        fields=fields,
    )


def _finished(kind: str, read: LogRead) -> bool:
    return read.status in (_RUN_TERMINAL if kind == "run" else _TERMINAL)


def _page(kind: str, record_id: str, read: LogRead, after: str | None) -> LogPage:
    lines = [_line_out(kind, record_id, s) for s in read.lines]
    return LogPage(
        lines=lines,
        cursor=lines[-1].cursor if lines else after,
        dropped=read.dropped,
        trimmed=read.trimmed,
        finished=_finished(kind, read),
    )


def _check_cursor(after: str | None) -> str | None:
    if after is not None and not _CURSOR.match(after):
        raise ValidationFailed(
            "after must be a cursor from a previous page (digits-digits)",
            details={"field": "after", "value": after[:100]},
        )
    return after


async def _read(
    store: LogStore, kind: str, record_id: str, after: str | None, limit: int
) -> LogRead:
    return await store.read(kind, record_id, after=after, limit=limit)


async def read_logs(
    services: Services, kind: str, record_id: str, after: str | None, limit: int, wait: float
) -> LogPage:
    """A page after ``after``; with ``wait``, as soon as it has a line or the record has
    ended (the waiter is registered before the first read, so nothing is missed)."""
    store, notifier = log_store(services), services.notifier
    if wait <= 0:
        return _page(kind, record_id, await _read(store, kind, record_id, after, limit), after)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with notifier.logs_waiter(_topic(kind, record_id)) as waiter:
        while True:
            waiter.event.clear()
            read = await _read(store, kind, record_id, after, limit)
            remaining = deadline - loop.time()
            if read.lines or _finished(kind, read) or remaining <= 0 or notifier.closing:
                return _page(kind, record_id, read, after)
            await waiter.wait(remaining)


def _topic(kind: str, record_id: str) -> str:
    return ("r/" if kind == "run" else "j/") + record_id


class Followers:
    """How many SSE log streams this process serves (bounded)."""

    count = 0


async def sse_frames(
    store: LogStore, notifier: Notifier, kind: str, record_id: str, after: str | None
) -> AsyncIterator[str]:
    """``log`` events for every line after ``after``, then ``end`` once the record has
    ended and every line so far is sent."""
    Followers.count += 1
    try:
        with notifier.logs_waiter(_topic(kind, record_id)) as waiter:
            yield "retry: 2000\n: connected\n\n"
            while True:
                waiter.event.clear()
                try:
                    read = await _read(store, kind, record_id, after, MAX_LOG_PAGE)
                except NotFound:
                    yield 'event: end\ndata: {"status":"gone"}\n\n'
                    return
                for stored in read.lines:
                    line = _line_out(kind, record_id, stored)
                    after = line.cursor
                    yield f"id: {after}\nevent: log\ndata: {line.model_dump_json()}\n\n"
                if len(read.lines) == MAX_LOG_PAGE:
                    continue  # more to send at once
                if _finished(kind, read) or notifier.closing:
                    end = {"status": read.status, "dropped": read.dropped, "trimmed": read.trimmed}
                    yield f"event: end\ndata: {orjson.dumps(end).decode()}\n\n"
                    return
                await waiter.wait(SSE_HEARTBEAT)
                if not waiter.event.is_set():
                    yield ": ping\n\n"
    finally:
        Followers.count -= 1


class SseStream(Stream):
    """A stream that keeps its own media type: the route's (JSON, for its pages) would
    otherwise win when Litestar renders it."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


def _wants_sse(request: Request[Any, Any, Any], follow: str | None) -> bool:
    return follow == "sse" or "text/event-stream" in request.headers.get("accept", "")


async def logs_response(
    request: Request[Any, Any, Any],
    services: Services,
    kind: str,
    record_id: str,
    after: str | None,
    limit: int,
    wait: float,
    follow: str | None,
) -> LogPage:
    """The page, or (asked for SSE) the stream: a Response, which Litestar sends as it is;
    the route declares the page only, so OpenAPI documents the page's shape (the
    stream is described in words)."""
    after = _check_cursor(after or request.headers.get("last-event-id") or None)
    if not _wants_sse(request, follow):
        return await read_logs(services, kind, record_id, after, limit, wait)
    store = log_store(services)
    await _read(store, kind, record_id, after, 1)  # 404 now, not inside the stream
    if Followers.count >= MAX_FOLLOWERS or services.notifier.closing:
        raise TooManyStreams(
            "this API process follows as many log streams as it may",
            details={"max_followers": MAX_FOLLOWERS},
        )
    stream = SseStream(
        sse_frames(store, services.notifier, kind, record_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    return cast(LogPage, stream)


_LIMIT = Parameter(ge=1, le=MAX_LOG_PAGE, description=f"lines per page (1-{MAX_LOG_PAGE})")
_WAIT = Parameter(
    ge=0,
    le=MAX_GET_WAIT,
    description=f"long poll: seconds to wait for a line or the end (0-{MAX_GET_WAIT:g})",
)
_AFTER = Parameter(description="the cursor of the last line read (a page's `cursor`)")
_FOLLOW = Parameter(
    description="`sse`: follow as server-sent events (as `Accept: text/event-stream`)"
)
_DESCRIPTION = (
    "A page of lines, oldest first, after `after`. `?wait=S` long-polls for the next "
    "line; `Accept: text/event-stream` (or `?follow=sse`) streams `log` events and one "
    "`end` event when the {what} has ended. `dropped` and `trimmed` count lines lost to "
    "full machine buffers and to the stream's bound."
)


class JobLogsController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @get(
        "/{job_id:str}/logs",
        operation_id="getJobLogs",
        responses=error_responses(404),
        summary="A job's captured log lines, paged and followable",
        description=_DESCRIPTION.format(what="job"),
    )
    async def job_logs(
        self,
        job_id: JobId,
        request: Request[Any, Any, Any],
        services: Services,
        after: Annotated[str | None, _AFTER] = None,
        limit: Annotated[int, _LIMIT] = 100,
        wait: Annotated[float, _WAIT] = 0.0,
        follow: Annotated[Literal["sse"] | None, _FOLLOW] = None,
    ) -> LogPage:
        return await logs_response(request, services, "job", job_id, after, limit, wait, follow)


class RunLogsController(Controller):
    path = "/v1/runs"
    tags = ["runs"]

    @get(
        "/{run_id:str}/logs",
        operation_id="getRunLogs",
        responses=error_responses(404),
        summary="A run's log lines (ctx.log, and logging in its activations and steps)",
        description=_DESCRIPTION.format(what="run"),
    )
    async def run_logs(
        self,
        run_id: RunId,
        request: Request[Any, Any, Any],
        services: Services,
        after: Annotated[str | None, _AFTER] = None,
        limit: Annotated[int, _LIMIT] = 100,
        wait: Annotated[float, _WAIT] = 0.0,
        follow: Annotated[Literal["sse"] | None, _FOLLOW] = None,
    ) -> LogPage:
        return await logs_response(request, services, "run", run_id, after, limit, wait, follow)
