"""Deadlines for reading a request, which uvicorn does not have.

uvicorn closes a connection that stays idle between requests (``timeout_keep_alive``),
but not one that sends part of a request and stalls: a request with half its headers, or
a body shorter than its Content-Length, holds its connection (and, for the body, a task
of the app waiting in ``receive()``) for as long as the client likes. Many such clients
use up sockets and memory at no cost to them.

``timed_protocol`` makes uvicorn's httptools protocol with two more deadlines:

- **headers**: from the connection's opening (first request) or the first byte of a
  request (later ones) to the end of its headers, at most ``header_timeout`` seconds;
- **body**: from the end of the headers to the end of the body, at most
  ``body_timeout`` seconds.

A request past its deadline gets ``408`` in the API's error shape (if no response was
started) and its connection is closed; an app task still waiting for the body hears
``http.disconnect``. The time an app takes to answer (a long poll's wait) is not bounded
here: only reading the request is.

Cost: a request only notes the loop's time when its reading starts and ends, about
0.3 µs (no timer per request: arming and cancelling two cost ~8 µs with uvloop). One
sweep, every quarter of the shorter timeout (at most 1 s), checks the connections that
are reading a request, and runs only while there are connections. So a stalled request
is dropped between its bound and its bound plus one sweep interval.

It subclasses uvicorn's httptools protocol and reads its ``cycle`` (``response_started``,
``response_complete``, ``disconnected``, ``message_event``): uvicorn internals, checked on
uvicorn 0.30.0 and 0.54.0, the ends of the range pyproject allows (the suite runs on both;
``tests/api/test_api_slow_clients.py`` fails if they change).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tether.errors import RequestTimeout


def _timeout_response(what: str, seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "error": {
                "code": RequestTimeout.code,
                "message": f"the request's {what} did not arrive within {seconds:g} s",
                "details": {"timeout": seconds},
            }
        }
    )
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"content-length: %d\r\n"
        b"connection: close\r\n\r\n%b" % (len(body), body)
    )


class _Sweeper:
    """The connections of one server (one event loop), and the periodic check of those
    reading a request."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self.loop = loop
        self.every = every
        self.connections: set[TimedHttpToolsProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, protocol: TimedHttpToolsProtocol) -> None:
        self.connections.add(protocol)
        if self._timer is None:
            self._timer = self.loop.call_later(self.every, self._sweep)

    def discard(self, protocol: TimedHttpToolsProtocol) -> None:
        self.connections.discard(protocol)

    def _sweep(self) -> None:
        self._timer = None
        now = self.loop.time()
        for protocol in [p for p in self.connections if p.reading_since is not None]:
            protocol.check(now)
        if self.connections:  # an idle server does not wake up for nothing
            self._timer = self.loop.call_later(self.every, self._sweep)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines (see module doc)."""

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    _sweepers: ClassVar[dict[asyncio.AbstractEventLoop, _Sweeper]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Loop time when reading the current request (its headers, or its body) began;
        # None between requests (the keep-alive timeout covers that) and while answering.
        self.reading_since: float | None = None
        self.reading_body = False
        sweepers = type(self)._sweepers
        sweeper = sweepers.get(self.loop)
        if sweeper is None:
            every = min(1.0, self.header_timeout / 4, self.body_timeout / 4)
            sweeper = sweepers[self.loop] = _Sweeper(self.loop, every)
        self._sweeper = sweeper

    def check(self, now: float) -> None:
        """Close the connection if its request is being read for too long."""
        since = self.reading_since
        if since is None:
            return
        limit = self.body_timeout if self.reading_body else self.header_timeout
        if now - since < limit:
            return
        self.reading_since = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            what = "body" if self.reading_body else "headers"
            self.transport.write(_timeout_response(what, limit))
        if cycle is not None and not cycle.response_complete:
            # The app's task waiting for the body hears the client left, and anything it
            # sends from now on is dropped (uvicorn does the same on connection_lost).
            cycle.disconnected = True
            cycle.message_event.set()
        self.logger.info("closing a connection whose request stalled")
        self.transport.close()

    # -- where a request's reading starts and ends -------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.reading_since = self.loop.time()  # the first request's headers are due
        self._sweeper.add(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.reading_since is None:  # the first request's clock runs since connect
            self.reading_since = self.loop.time()
            self.reading_body = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.reading_since = self.loop.time()
        self.reading_body = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_since = None
        self.reading_body = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.reading_since = None
        self._sweeper.discard(self)
        super().connection_lost(exc)


def timed_protocol(header_timeout: float, body_timeout: float) -> type[TimedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` option, with these deadlines (a class of
    its own per server, with its own sweepers)."""
    if header_timeout <= 0 or body_timeout <= 0:
        raise ValueError("header and body timeouts must be positive")
    return type(
        "TimedHttpToolsProtocol",
        (TimedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout, "_sweepers": {}},
    )
