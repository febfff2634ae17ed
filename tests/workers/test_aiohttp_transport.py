"""The aiohttp backend of HttpSession (TETHER_HTTP_BACKEND=aiohttp, for measurement) keeps
the transport's contract: the same answers and the same typed errors as the fast backend,
against a scripted socket server. aiohttp is in the dev extra, so these run with the suite."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from scripted_http import HANG, Reply, ScriptedServer, ok

from tether._client_fast import FastTransport
from tether._client_http import HttpSession
from tether.errors import ApiUnavailable, ConfigurationError, NotFound

Serve = Callable[..., Awaitable[ScriptedServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[ScriptedServer] = []

    async def start(reply: Reply, close_after_each: bool = False) -> ScriptedServer:
        servers.append(await ScriptedServer(reply, close_after_each).start())
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def aiohttp_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_HTTP_BACKEND", "aiohttp")


def test_plain_http_uses_the_fast_backend_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_HTTP_BACKEND", raising=False)
    assert isinstance(HttpSession("http://127.0.0.1:1")._fast, FastTransport)


def test_the_httpx_backend_can_be_chosen_for_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_HTTP_BACKEND", "httpx")
    session = HttpSession("http://127.0.0.1:1")
    assert (session._fast, session._http is not None) == (None, True)


def test_an_unknown_backend_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_HTTP_BACKEND", "urllib")
    with pytest.raises(ConfigurationError, match="TETHER_HTTP_BACKEND"):
        HttpSession("http://127.0.0.1:1")


def test_the_aiohttp_backend_is_chosen_by_the_environment(aiohttp_backend: None) -> None:
    from tether._client_aiohttp import AiohttpTransport

    assert isinstance(HttpSession("http://127.0.0.1:1")._fast, AiohttpTransport)


async def test_aiohttp_reassembles_a_chunked_answer(aiohttp_backend: None, serve: Serve) -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    )
    server = await serve(lambda n: chunked)
    session = HttpSession(server.url)
    assert await session.json("GET", "/x") == {"a": 1}
    await session.aclose()


async def test_aiohttp_keeps_connections_alive_between_requests(
    aiohttp_backend: None, serve: Serve
) -> None:
    server = await serve(lambda n: ok(b"[]"))
    session = HttpSession(server.url)
    for _ in range(3):
        await session.request("POST", "/y", body={"n": 1})
    await session.aclose()
    assert (server.requests, server.connections) == (3, 1)


async def test_aiohttp_sends_the_query_body_and_headers_it_is_given(
    aiohttp_backend: None, serve: Serve
) -> None:
    server = await serve(lambda n: ok(b"{}"))
    session = HttpSession(server.url, headers={"authorization": "Bearer t"})
    await session.request("POST", "/v1/jobs", body={"a": 1}, params={"wait": 2.5, "x": None})
    await session.aclose()
    request_line, *headers = server.heads[0].lower().split("\r\n")
    assert request_line == "post /v1/jobs?wait=2.5 http/1.1"
    assert {"authorization: bearer t", "content-type: application/json"} <= set(headers)


async def test_aiohttp_replaces_a_connection_the_server_closed_while_idle(
    aiohttp_backend: None, serve: Serve
) -> None:
    server = await serve(lambda n: ok(b"{}"), close_after_each=True)
    session = HttpSession(server.url)
    await session.request("GET", "/a")
    await session.request("GET", "/b")
    await session.aclose()
    assert (server.requests, server.connections) == (2, 2)


async def test_aiohttp_sends_a_get_again_when_its_reused_connection_drops_unanswered(
    aiohttp_backend: None, serve: Serve
) -> None:
    # The second request reaches the server, which hangs up without answering.
    server = await serve(lambda n: None if n == 2 else ok(b"{}"))
    session = HttpSession(server.url)
    await session.request("GET", "/a")
    assert await session.request("GET", "/b") == b"{}"
    await session.aclose()
    assert server.requests == 3


async def test_aiohttp_does_not_send_a_post_again_when_its_connection_drops_unanswered(
    aiohttp_backend: None, serve: Serve
) -> None:
    # The POST reached the server (it may have enqueued a job): sending it again could
    # enqueue the job twice, so the caller gets ApiUnavailable instead.
    server = await serve(lambda n: None if n == 2 else ok(b"{}"))
    session = HttpSession(server.url)
    await session.request("GET", "/a")
    with pytest.raises(ApiUnavailable):
        await session.request("POST", "/v1/jobs", body={"function": "f"})
    await session.aclose()
    assert server.requests == 2


async def test_aiohttp_error_answers_become_the_typed_error(
    aiohttp_backend: None, serve: Serve
) -> None:
    body = b'{"error": {"code": "not_found", "message": "no job x", "details": {"id": "x"}}}'
    server = await serve(
        lambda n: b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    session = HttpSession(server.url)
    with pytest.raises(NotFound) as err:
        await session.request("GET", "/v1/jobs/x")
    await session.aclose()
    assert err.value.details == {"id": "x"}


async def test_aiohttp_a_malformed_answer_is_api_unavailable(
    aiohttp_backend: None, serve: Serve
) -> None:
    server = await serve(lambda n: b"HTTP/1.1 TWO HUNDRED\r\ncontent-length: 2\r\n\r\n{}")
    session = HttpSession(server.url)
    with pytest.raises(ApiUnavailable):
        await session.request("GET", "/z")
    await session.aclose()


async def test_aiohttp_an_api_that_does_not_answer_in_time_is_api_unavailable(
    aiohttp_backend: None, serve: Serve
) -> None:
    server = await serve(lambda n: HANG)
    session = HttpSession(server.url)
    with pytest.raises(ApiUnavailable, match="TimeoutError"):
        await session.request("GET", "/slow", timeout=0.2)
    await session.aclose()


async def test_aiohttp_a_refused_connection_is_api_unavailable(aiohttp_backend: None) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = HttpSession(f"http://127.0.0.1:{port}")
    with pytest.raises(ApiUnavailable) as err:
        await session.request("GET", "/v1/health")
    await session.aclose()
    assert isinstance(err.value.__cause__, OSError)


async def test_aiohttp_sends_a_repeatable_post_again_when_its_connection_drops_unanswered(
    serve: Serve,
) -> None:
    # A POST carrying an idempotency key may go out twice: the API dedupes it.
    from tether._client_aiohttp import AiohttpTransport

    server = await serve(lambda n: None if n == 2 else ok(b"{}"))
    transport = AiohttpTransport(server.url)
    await transport.request("GET", "/a", None, 5.0)
    answer = await transport.request("POST", "/v1/jobs", b"{}", 5.0, repeatable=True)
    await transport.aclose()
    assert (answer, server.requests) == ((200, b"{}"), 3)
