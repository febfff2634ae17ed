"""A request whose answer is lost with its connection is sent again only when that is
safe: a GET, or a POST carrying an idempotency key (the client makes one up for every
job it submits and every run it starts). Against the real API, behind a proxy that acts
as a keep-alive connection closed at the wrong moment does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from api_server import ApiServer

from tether import AsyncClient
from tether._client_http import HttpSession
from tether.errors import ApiUnavailable
from tether.workers import Worker


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request or response with a Content-Length (all the API sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


class AnswerDroppingProxy:
    """Forwards to the API. On the first connection, the second request reaches the API
    and is acted on, but its answer never comes back: the connection closes instead."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections = 0
        self.dropped = asyncio.Event()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        api_r, api_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        answered = 0
        try:
            while True:
                request = await _read_message(client_r)
                api_w.write(request)
                await api_w.drain()
                answer = await _read_message(api_r)
                if first and answered == 1:
                    self.dropped.set()
                    return  # the API did the work; the client hears nothing
                client_w.write(answer)
                await client_w.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            client_w.close()
            api_w.close()


@pytest.fixture
async def proxy(api: ApiServer) -> AsyncIterator[AnswerDroppingProxy]:
    p = AnswerDroppingProxy(api.port)
    p.server = await asyncio.start_server(p.handle, "127.0.0.1", 0)
    yield p
    p.server.close()


async def nap(ctx: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def registered(make_worker: Callable[..., Worker]) -> AsyncIterator[None]:
    """A machine serving ``nap``, so jobs of it can be submitted (delayed: it runs none)."""
    async with make_worker(nap):
        yield


async def _jobs(client: AsyncClient) -> int:
    return len(await client.list_jobs(function="nap", limit=100))


async def test_a_submitted_job_whose_answer_is_lost_is_sent_again_and_is_still_one_job(
    proxy: AnswerDroppingProxy, client: AsyncClient, registered: None
) -> None:
    async with AsyncClient(proxy.url) as through_proxy:
        await through_proxy.enqueue("nap", delay=600)
        second = await through_proxy.enqueue("nap", delay=600)  # its first answer is lost
    assert proxy.dropped.is_set() and proxy.connections == 2
    assert second.status == "delayed"
    assert await _jobs(client) == 2


async def test_a_post_without_an_idempotency_key_is_not_sent_again(
    proxy: AnswerDroppingProxy, client: AsyncClient, registered: None
) -> None:
    session = HttpSession(proxy.url)
    body = {"function": "nap", "delay": 600}
    try:
        await session.request("POST", "/v1/jobs", body=body)
        with pytest.raises(ApiUnavailable):
            await session.request("POST", "/v1/jobs", body=body)
    finally:
        await session.aclose()
    assert proxy.dropped.is_set() and proxy.connections == 1
    assert await _jobs(client) == 2  # the lost answer's job exists, once
