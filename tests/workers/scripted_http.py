"""A scripted HTTP/1.1 server on a real socket, for the transports behind HttpSession: it
answers the n-th request with ``reply(n)`` (raw response bytes), hangs up without an answer
when ``reply`` returns ``None``, and never answers when it returns ``HANG``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

HANG: Final = b"<hang>"
Reply = Callable[[int], bytes | None]  # request number -> raw response bytes


class ScriptedServer:
    def __init__(self, reply: Reply, close_after_each: bool = False) -> None:
        self.reply = reply
        self.close_after_each = close_after_each
        self.requests = 0
        self.connections = 0
        self.heads: list[str] = []  # each request's line and headers, as received
        self.server: asyncio.Server | None = None
        self.released = asyncio.Event()  # lets a hanging handler end when the test does

    async def start(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = 0
                for line in head.split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                await reader.readexactly(length)
                self.requests += 1
                self.heads.append(head)
                answer = self.reply(self.requests)
                if answer == HANG:
                    await self.released.wait()
                if answer is None or answer == HANG:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        assert self.server is not None
        self.released.set()
        self.server.close()


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
