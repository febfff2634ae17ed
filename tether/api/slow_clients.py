"""Deadlines for reading a request, which uvicorn does not have.

uvicorn closes a connection that stays idle between requests (``timeout_keep_alive``),
but not one that sends part of a request and stalls: a request with half its headers, or
a body shorter than its Content-Length, holds its connection (and, for the body, a task
of the app waiting in ``receive()``) for as long as the client likes. Many such clients
use up sockets and memory at no cost to them.

``timed_protocol`` makes uvicorn's httptools protocol with two more deadlines, each a
single timer per connection (no cost per byte):

- **headers**: from the connection's opening (first request) or the first byte of a
  request (later ones) to the end of its headers, at most ``header_timeout`` seconds;
- **body**: from the end of the headers to the end of the body, at most
  ``body_timeout`` seconds.

A request past its deadline gets ``408`` in the API's error shape (if no response was
started) and its connection is closed; an app task still waiting for the body hears
``http.disconnect``. The time an app takes to answer (a long poll's wait) is not bounded
here: only reading the request is.
"""

from __future__ import annotations

import asyncio
from typing import Any

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


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines (see module doc)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_timeout_response(what, seconds))
        if cycle is not None and not cycle.response_complete:
            # The app's task waiting for the body hears the client left, and anything it
            # sends from now on is dropped (uvicorn does the same on connection_lost).
            cycle.disconnected = True
            cycle.message_event.set()
        self.logger.info("closing a connection whose request %s stalled", what)
        self.transport.close()

    # -- where a request's reading starts and ends -------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the first request's deadline runs since connect
            self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def timed_protocol(header_timeout: float, body_timeout: float) -> type[TimedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` option, with these deadlines."""
    if header_timeout <= 0 or body_timeout <= 0:
        raise ValueError("header and body timeouts must be positive")
    return type(
        "TimedHttpToolsProtocol",
        (TimedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
