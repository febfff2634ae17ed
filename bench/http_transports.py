"""The CPU one request costs each HTTP client backend of HttpSession, alone: the transport's
``request`` (no HttpSession, no JSON decoding), sequential GETs on one kept-alive connection
to a trivial HTTP/1.1 server in another process (so its CPU is not counted), timed with
``time.process_time()`` (user + system of this process).

The backends: ``fast`` (tether/_client_fast.py, the default), ``aiohttp``
(tether/_client_aiohttp.py; aiohttp is in the dev and bench extras) and ``httpx``, as
HttpSession drives them. bench/end_to_end.py measures the same backends inside the
whole system; this isolates the client's own share. Each backend runs --rounds times,
interleaved, and each round reports the median of 5 series of --requests GETs. Usage:
    .venv/bin/python bench/http_transports.py [--requests 2000] [--rounds 3] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from tether._client_fast import FastTransport
from tether.redis_server import free_port

# A job record as GET /v1/jobs/{id} answers it, near enough in size (about 330 bytes).
BODY = b'{"id":"01JAAAAAAAAAAAAAAAAAAAAAAA","status":"completed","function":"noop"}' * 4
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)

SERVER = f"""
import asyncio, sys

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            writer.write({ANSWER!r})
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class Transport(Protocol):
    async def request(
        self, method: str, target: str, body: bytes | None, timeout: float | None
    ) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """httpx as HttpSession drives it for https:// (one AsyncClient, base_url)."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url)

    async def request(
        self, method: str, target: str, body: bytes | None, timeout: float | None
    ) -> tuple[int, bytes]:
        response = await self.client.request(method, target, content=body, timeout=timeout)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


def backends() -> dict[str, Callable[[str], Any]]:
    found: dict[str, Callable[[str], Any]] = {"fast": FastTransport}
    if importlib.util.find_spec("aiohttp") is not None:
        from tether._client_aiohttp import AiohttpTransport

        found["aiohttp"] = AiohttpTransport
    else:
        print("aiohttp: left out (not installed; it comes with the dev and bench extras)")
    found["httpx"] = HttpxTransport
    return found


async def cpu_per_request(transport: Transport, requests: int) -> float:
    """Median over 5 series of CPU µs per GET, after 200 GETs of warm-up."""
    for _ in range(200):
        await transport.request("GET", "/v1/jobs/01J", None, 30.0)
    series = []
    for _ in range(5):
        before = time.process_time()
        for _ in range(requests):
            status, _ = await transport.request("GET", "/v1/jobs/01J", None, 30.0)
            assert status == 200
        series.append((time.process_time() - before) * 1e6 / requests)
    return statistics.median(series)


async def measure(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    found = backends()
    for _ in range(args.rounds):
        for name, make in found.items():
            transport = make(url)
            results.setdefault(name, []).append(await cpu_per_request(transport, args.requests))
            await transport.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="GETs per series")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all backends")
    parser.add_argument("--uvloop", action="store_true", help="on uvloop, as workers run")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        run = asyncio.run
        if args.uvloop:
            import uvloop

            run = uvloop.run
        results = run(measure(f"http://127.0.0.1:{port}", args))
    finally:
        server.kill()
        server.wait()
    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"\nCPU per GET, transport alone ({loop}; median of rounds, then each round's):")
    print("| backend | CPU per GET | rounds |\n|---|---:|---|")
    for name, values in results.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {name} | {statistics.median(values):.0f} µs | {rounds} |")


if __name__ == "__main__":
    main()
