"""The cost of checking a key on the hot path: the API's ``before_request`` hook
(``tether.api.auth.Gate``) called directly, in-process, for a poll by a machine key
(the most expensive case: key cache lookup, role check, namespace services, machine
binding check), against a Redis server this script starts. Prints microseconds per
request; compare with the CPU a request costs in total (bench/end_to_end.py).

    .venv/bin/python bench/auth_check.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys
from tether.redis_server import RedisServer


class Request:
    """What the hook reads of a request: its ASGI scope."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope


async def measure(url: str, requests: int, repeats: int) -> list[float]:
    redis = Redis.from_url(url, decode_responses=True)
    key, _ = await KeyStore(redis, Keys()).create("bench-machine", "machine")
    app = create_app(ApiSettings(redis_url=url))
    gate: Any = app.before_request
    poll = next(
        h
        for route in app.routes
        for h in getattr(route, "route_handlers", [])
        if h.operation_id == "poll"
    )
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
    ]
    out: list[float] = []
    async with app.lifespan():
        batch = [
            Request(
                {
                    "headers": headers,
                    "route_handler": poll,
                    "path": "/v1/machines/m1/poll",
                    "path_params": {"machine_id": "m1"},
                }
            )
            for _ in range(1000)
        ]
        await gate(batch[0])  # the first call reads Redis (key, binding); then cached
        for _ in range(repeats):
            started = time.perf_counter()
            for i in range(requests):
                await gate(batch[i % 1000])
            out.append((time.perf_counter() - started) / requests * 1e6)
    await redis.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tether-auth-bench-") as tmp:
        server = RedisServer(Path(tmp), appendonly=False).start()
        try:
            figures = asyncio.run(measure(server.url, args.requests, args.repeats))
        finally:
            server.stop()
    print(
        f"key check per request (machine key, poll route): median "
        f"{statistics.median(figures):.2f} us, min {min(figures):.2f} us "
        f"over {args.repeats} x {args.requests:,} calls"
    )


if __name__ == "__main__":
    main()
