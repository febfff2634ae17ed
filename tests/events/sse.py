"""A reader of server-sent events over a real HTTP connection (httpx streaming)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson


class SseReader:
    """Frames of one ``text/event-stream`` response: (event, data) pairs, and comments."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def frame(self, timeout: float = 5.0) -> tuple[str, Any]:
        """The next event (comments are kept in ``comments``, not returned)."""
        async with asyncio.timeout(timeout):
            event, data = "message", ""
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    return event, orjson.loads(data)
        raise AssertionError("the stream ended")

    async def until(self, event: str, timeout: float = 5.0, **match: Any) -> Any:
        """Skip to the next ``event`` whose data has every item of ``match``."""
        async with asyncio.timeout(timeout):
            while True:
                kind, data = await self.frame(timeout)
                if kind == event and all(data.get(k) == v for k, v in match.items()):
                    return data

    async def comment(self, text: str, timeout: float = 5.0) -> None:
        """Until a comment line ``: text`` arrived."""
        async with asyncio.timeout(timeout):
            while text not in self.comments:
                line = await anext(self._lines)
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())


@asynccontextmanager
async def events(
    base_url: str, headers: dict[str, str] | None = None, **params: str
) -> AsyncIterator[SseReader]:
    """GET /v1/events with ``params``, open until the block ends; it yields once the
    server has registered the stream (its ``: connected`` comment arrived)."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=30)) as http,
        http.stream("GET", "/v1/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        await reader.comment("connected")
        yield reader
