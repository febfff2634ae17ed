"""The plain-http backend of HttpSession, against a scripted socket server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tether._client_http import HttpSession
from tether.errors import ApiUnavailable, NotFound

Reply = Callable[[int], bytes]  # request number -> raw response bytes


class ScriptedServer:
    """Answers each request on a connection with ``reply(n)``; may then hang up."""

    def __init__(self, reply: Reply, close_after_each: bool = False) -> None:
        self.reply = reply
        self.close_after_each = close_after_each
        self.requests = 0
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                await reader.readexactly(length)
                self.requests += 1
                writer.write(self.reply(self.requests))
                await writer.drain()
                if self.close_after_each:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    async def start(reply: Reply, close_after_each: bool = False) -> ScriptedServer:
        s = ScriptedServer(reply, close_after_each)
        s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
        servers.append(s)
        return s

    yield start  # type: ignore[misc]
    for s in servers:
        assert s.server is not None
        s.server.close()


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def test_a_chunked_answer_is_reassembled(serve: Callable[..., ScriptedServer]) -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    )
    server = await serve(lambda n: chunked)
    session = HttpSession(server.url)
    assert await session.json("GET", "/x") == {"a": 1}
    await session.aclose()


async def test_connections_are_kept_alive_between_requests(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = await serve(lambda n: ok(b"[]"))
    session = HttpSession(server.url)
    for _ in range(3):
        await session.request("POST", "/y", body={"n": 1})
    await session.aclose()
    assert (server.requests, server.connections) == (3, 1)


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = await serve(lambda n: ok(b"{}"), close_after_each=True)
    session = HttpSession(server.url)
    await session.request("GET", "/a")
    # Whether the server's close arrives before the next request or after it is sent,
    # the request goes out again on a fresh connection.
    await session.request("GET", "/b")
    await session.aclose()
    assert (server.requests, server.connections) == (2, 2)


async def test_an_error_answer_becomes_the_typed_error(
    serve: Callable[..., ScriptedServer],
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


async def test_an_answer_without_a_length_is_api_unavailable(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = await serve(lambda n: b"HTTP/1.1 200 OK\r\n\r\n{}")
    session = HttpSession(server.url)
    with pytest.raises(ApiUnavailable):
        await session.request("GET", "/z")
    await session.aclose()
