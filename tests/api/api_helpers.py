"""Helpers of the API tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar

# The `register` fixture: heartbeat a machine serving some functions.
Register = Callable[..., Awaitable[dict[str, Any]]]


def client_for(app: Litestar, key: str | None = None) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in-process (no socket, no server), sending
    ``key`` as its bearer token when given."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"authorization": f"Bearer {key}"} if key else None
    return httpx.AsyncClient(transport=transport, base_url="http://tether.test", headers=headers)


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[Litestar]:
    """The app with its lifespan entered in a task of its own, as an ASGI server does
    (anyio wants a lifespan left in the task that entered it; fixtures switch tasks)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # startup failed: raise its error here
    try:
        yield app
    finally:
        stop.set()
        await task


async def admin_key(redis_url: str, prefix: str) -> str:
    """A new admin key of the deployment with key prefix ``prefix``."""
    from auth_helpers import create_keys

    from tether.queue.redis_py import redis_client

    redis = redis_client(redis_url, decode_responses=True)
    try:
        return (await create_keys(redis, prefix)).admin
    finally:
        await redis.aclose()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the event loop until ``condition()`` holds (a state, not a duration)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an error response (and a check of the shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error
