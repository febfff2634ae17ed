"""Slow clients, over real sockets to the real server (uvicorn in a thread): a request that
stalls while sending its headers or its body is answered 408 and dropped within the
documented bound, while other clients are served meanwhile."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from api_server import ApiServer
from auth_helpers import TestKeys

from tether.api.settings import ApiSettings

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
KEEP_ALIVE_TIMEOUT = 1.0
SLACK = 1.0  # scheduling on a loaded test machine


@pytest.fixture
def server(settings: ApiSettings, test_keys: TestKeys) -> Iterator[ApiServer]:
    timed = dataclasses.replace(
        settings,
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
        keep_alive_timeout=KEEP_ALIVE_TIMEOUT,
    )
    api = ApiServer(timed, keys=test_keys).start()
    yield api
    api.stop()


def auth_line(server: ApiServer) -> bytes:
    """The request's Authorization header line (the test's admin key)."""
    assert server.keys is not None
    return b"Authorization: Bearer %s\r\n" % server.keys.admin.encode()


def connect(server: ApiServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and when it closed (monotonic)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic()


def served_meanwhile(server: ApiServer, until: float) -> int:
    """Requests of another client answered while the stalled one waits."""
    served = 0
    with httpx.Client(base_url=server.url, timeout=5) as other:
        while time.monotonic() < until:
            assert other.get("/healthz").status_code == 200
            served += 1
            time.sleep(0.05)
    return served


def test_a_request_stalled_in_its_headers_is_dropped_within_the_header_timeout(
    server: ApiServer,
) -> None:
    with connect(server) as stalled:
        started = time.monotonic()
        stalled.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: tether\r\nContent-Ty")
        served = served_meanwhile(server, started + HEADER_TIMEOUT / 2)
        answer, closed_at = read_until_closed(stalled)

    assert served > 0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer
    assert HEADER_TIMEOUT - 0.1 <= closed_at - started <= HEADER_TIMEOUT + SLACK


def test_a_body_shorter_than_its_content_length_is_dropped_within_the_body_timeout(
    server: ApiServer,
) -> None:
    with connect(server) as stalled:
        started = time.monotonic()
        stalled.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: tether\r\n"
            + auth_line(server)
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"function":'
        )
        served = served_meanwhile(server, started + BODY_TIMEOUT / 2)
        answer, closed_at = read_until_closed(stalled)

    assert served > 0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert BODY_TIMEOUT - 0.1 <= closed_at - started <= BODY_TIMEOUT + SLACK


def test_a_connection_that_never_sends_a_request_is_closed_within_the_header_timeout(
    server: ApiServer,
) -> None:
    with connect(server) as silent:
        started = time.monotonic()
        answer, closed_at = read_until_closed(silent)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert closed_at - started <= HEADER_TIMEOUT + SLACK


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    server: ApiServer,
) -> None:
    with connect(server) as idle:
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: tether\r\n\r\n")
        first = idle.recv(65536)
        answered = time.monotonic()
        rest, closed_at = read_until_closed(idle)

    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest == b""  # closed quietly: no request was under way
    assert KEEP_ALIVE_TIMEOUT - 0.1 <= closed_at - answered <= KEEP_ALIVE_TIMEOUT + SLACK


def test_a_slow_request_that_finishes_within_its_bounds_is_served(server: ApiServer) -> None:
    body = b'{"held": [], "meta": {"note": "a slow link"}}'
    with connect(server) as slow:
        for piece in (
            b"POST /v1/machines/slow-1/heartbeat HTTP/1.1\r\nHost: tether\r\n" + auth_line(server),
            b"Content-Type: application",
        ):
            slow.sendall(piece)
            time.sleep(HEADER_TIMEOUT / 4)
        slow.sendall(b"/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 8):
            slow.sendall(body[i : i + 8])
            time.sleep(BODY_TIMEOUT / 10)
        answer = slow.recv(65536)

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_uvicorns_protocol_still_has_what_the_deadlines_read() -> None:
    # tether/api/slow_clients.py subclasses uvicorn's httptools protocol and its cycle.
    import inspect

    from uvicorn.protocols.http import httptools_impl

    hooks = ("on_message_begin", "on_headers_complete", "on_message_complete")
    for hook in (*hooks, "connection_made", "connection_lost"):
        assert callable(getattr(httptools_impl.HttpToolsProtocol, hook, None)), (
            f"uvicorn's HttpToolsProtocol has no {hook} any more: see slow_clients.py"
        )
    cycle_init = inspect.signature(httptools_impl.RequestResponseCycle.__init__)
    assert "message_event" in cycle_init.parameters, (
        "uvicorn's RequestResponseCycle takes no message_event any more: see slow_clients.py"
    )
    source = inspect.getsource(httptools_impl.RequestResponseCycle)
    for attribute in ("response_started", "response_complete", "disconnected"):
        assert f"self.{attribute}" in source, (
            f"uvicorn's RequestResponseCycle has no {attribute} any more: see slow_clients.py"
        )
