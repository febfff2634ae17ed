"""``GET /v1/events``: what happens, pushed as server-sent events, for applications and
the dashboard.

The stream is fed by the notifier's one subscription (no Redis connection per client):
``q:<fn> [n]`` becomes ``job.ready``, ``j:<id> ...`` one ``job.finished`` per job, and
``s:<run> <status>`` (published by the run scripts, ``run_timeline.lua``) ``run.status``.
Events are live only: there is no replay (``id:`` counts per process); a client that
reconnects re-reads what it shows through the JSON API.

Bounds: at most ``events_max_clients`` streams per process (503 ``too_many_streams``
beyond), ``events_queue`` events buffered per stream (a slow reader loses the newest,
counted in ``tether_events_dropped_total`` and told by a ``dropped`` event once it has
read what was buffered), and a ``: ping`` comment every ``events_heartbeat`` seconds so
proxies and clients see a live connection.

Cost: with no stream open, one dict lookup per notification; with streams, the message
is parsed once and each event serialized once, then offered to each matching stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from litestar import Controller, Request, get
from litestar.response import Stream

from tether.api.error_handlers import error_responses
from tether.api.notify import Notifier
from tether.api.services import Services
from tether.errors import InvalidRequest, TooManyStreams
from tether.queue.engine import check_id
from tether.queue.keys import JOB_FINISHED, READY, RUN_STATUS

KINDS = ("job.ready", "job.finished", "run.status")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a stream wants: every given condition must hold (absent ones always do)."""

    kinds: frozenset[str] | None = None
    run: str | None = None
    job: str | None = None
    function: str | None = None

    @classmethod
    def parse(
        cls, kind: str | None, run: str | None, job: str | None, function: str | None
    ) -> EventFilter:
        kinds = None
        if kind:
            kinds = frozenset(k.strip() for k in kind.split(",") if k.strip())
            unknown = sorted(kinds - set(KINDS))
            if unknown:
                raise InvalidRequest(
                    f"unknown event kind {unknown[0]!r}",
                    details={"kinds": list(KINDS)},
                )
        for value, name in ((run, "run"), (job, "job"), (function, "function")):
            if value is not None:
                check_id(value, name)
        return cls(kinds, run, job, function)

    def passes(self, kind: str, data: dict[str, Any]) -> bool:
        return (
            (self.kinds is None or kind in self.kinds)
            and (self.run is None or data.get("run") == self.run)
            and (self.job is None or data.get("job") == self.job)
            and (self.function is None or data.get("function") == self.function)
        )


class EventStream:
    """One client's bounded buffer of SSE frames (None: the stream ends)."""

    __slots__ = ("closed", "dropped", "filter", "queue")

    def __init__(self, event_filter: EventFilter, size: int) -> None:
        self.filter = event_filter
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(size)
        self.dropped = 0  # since the client was last told
        self.closed = False

    def offer(self, frame: str) -> bool:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        self.closed = True
        if self.queue.full():
            self.queue.get_nowait()  # make room for the end; the client re-reads anyway
        self.queue.put_nowait(None)


def parse_message(data: str) -> list[tuple[str, dict[str, Any]]]:
    """The events a notification message stands for (``r:<run>``, a run finished, is
    left out: ``s:<run> <status>`` says the same with the status)."""
    kind, _, rest = data.partition(":")
    if kind == READY:
        function, _, count = rest.partition(" ")
        return [("job.ready", {"function": function, "count": int(count or 1)})]
    if kind == JOB_FINISHED:
        return [("job.finished", {"job": job_id}) for job_id in rest.split(" ") if job_id]
    if kind == RUN_STATUS:
        run, _, status = rest.partition(" ")
        return [("run.status", {"run": run, "status": status})]
    return []


class EventHub:
    """Every event stream of this process, grouped by the notifier feeding it."""

    def __init__(self, max_clients: int, queue_size: int, heartbeat: float) -> None:
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self.clients = 0
        self.dropped = 0
        self.closing = False
        self._seq = 0
        self._streams: dict[int, set[EventStream]] = {}  # id(notifier) -> its streams
        self._attached: dict[int, Notifier] = {}

    def stats(self) -> tuple[int, int]:
        return self.clients, self.dropped

    def _attach(self, notifier: Notifier) -> set[EventStream]:
        key = id(notifier)
        if key not in self._attached:
            self._attached[key] = notifier
            streams: set[EventStream] = set()
            self._streams[key] = streams

            def on_message(data: str) -> None:
                if streams:
                    self._publish(streams, data)

            notifier.listeners.append(on_message)
            notifier.closers.append(self.close)
        return self._streams[key]

    def _publish(self, streams: set[EventStream], data: str) -> None:
        now = int(time.time() * 1000)
        for kind, body in parse_message(data):
            frame: str | None = None
            for stream in streams:
                if stream.filter.passes(kind, body):
                    if frame is None:
                        self._seq += 1
                        body["at"] = now
                        frame = f"id: {self._seq}\nevent: {kind}\ndata: " + (
                            orjson.dumps(body).decode() + "\n\n"
                        )
                    if not stream.offer(frame):
                        self.dropped += 1

    def check_room(self) -> None:
        if self.closing or self.clients >= self.max_clients:
            raise TooManyStreams(
                "this API process serves as many event streams as it may",
                details={"max_clients": self.max_clients},
            )

    async def frames(self, notifier: Notifier, event_filter: EventFilter) -> AsyncIterator[str]:
        """The SSE frames of one client, until it leaves or the process shuts down."""
        if self.closing or self.clients >= self.max_clients:  # raced past check_room
            yield 'event: error\ndata: {"code":"too_many_streams"}\n\n'
            return
        streams = self._attach(notifier)
        stream = EventStream(event_filter, self.queue_size)
        streams.add(stream)
        self.clients += 1
        try:
            # Registered: from here on nothing is missed (clients may wait for this).
            yield "retry: 2000\n: connected\n\n"
            while True:
                if stream.dropped and stream.queue.empty():
                    # After what was buffered before the loss, before anything later.
                    count, stream.dropped = stream.dropped, 0
                    yield f'event: dropped\ndata: {{"count":{count}}}\n\n'
                try:
                    async with asyncio.timeout(self.heartbeat):
                        frame = await stream.queue.get()
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if frame is None:
                    return
                yield frame
        finally:
            streams.discard(stream)
            self.clients -= 1

    def close(self) -> None:
        """End every stream (the process is shutting down), and refuse new ones."""
        self.closing = True
        for streams in self._streams.values():
            for stream in list(streams):
                if not stream.closed:
                    stream.close()


class EventsController(Controller):
    path = "/v1/events"
    tags = ["events"]

    @get(
        "/",
        operation_id="streamEvents",
        responses=error_responses(),
        summary="Server-sent events: jobs ready and finished, run status changes",
        description=(
            "A `text/event-stream`. Event kinds: `job.ready` `{function, count, at}`, "
            "`job.finished` `{job, at}`, `run.status` `{run, status, at}`, and `dropped` "
            "`{count}` when this client fell behind. Filters (all optional, all must hold): "
            "`kind` (comma-separated), `run`, `job`, `function`. Live only: no replay."
        ),
        media_type="text/event-stream",
    )
    async def stream_events(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        kind: str | None = None,
        run: str | None = None,
        job: str | None = None,
        function: str | None = None,
    ) -> Stream:
        hub: EventHub = request.app.state.events
        event_filter = EventFilter.parse(kind, run, job, function)
        hub.check_room()
        return Stream(
            hub.frames(services.notifier, event_filter),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
