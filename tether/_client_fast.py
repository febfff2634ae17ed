"""A small HTTP/1.1 keep-alive client for plain ``http://`` APIs: the hot path of the
client and of workers (polls, results, heartbeats, enqueues, waits).

Why not httpx everywhere: on a busy 2-core machine httpx spends 1-2 ms of CPU per
request in its own layers (about 3,000 Python calls each: httpx, httpcore, anyio, h11),
measured with ``os.times()`` around 1,000 requests to the real API; this client spends
about a tenth of that, and a worker makes several requests per job on the latency path.
httpx stays the backend for ``https://`` and for tests that plug in an httpx transport.

Against aiohttp 3.14.5 (its C parser) and httpx 0.28.1, each behind the same
``HttpSession`` (``TETHER_HTTP_BACKEND``), on a 2-core machine shared with other jobs
(load 6-9), Python 3.11, redis-py 8.1.0, 2026-11-29; this client / aiohttp / httpx:

- CPU per GET, the transport alone (``bench/http_transports.py --rounds 5``, medians):
  38 / 103 / 551 µs on uvloop (as workers run), 39 / 112 / 582 µs on asyncio.
- In the whole system (``bench/end_to_end.py --runs 3 --rounds 5``: 2 workers x max_jobs
  100, AOF always; medians of 15 runs, CPU summed over them): worker CPU per job run one
  at a time 0.52 / 0.99 / 3.03 ms, per job in batches of 1,000 0.015 / 0.020 / 0.042
  ms; the caller's CPU per ``AsyncClient.get`` (JSON and model included) 148 / 249 /
  1,037 µs.
- Wall clock, same runs: no-op jobs/s 4,192 / 3,660 / 3,654; enqueue→result p50 15.6 /
  17.3 / 22.8 ms, p99 35.0 / 38.5 / 43.7 ms.

Verdict: a clear margin in CPU, none that this machine can show in wall clock. It costs
about 35-40 % of aiohttp's CPU per request (65-75 µs less; 0.47 ms less per job on a
worker's one-at-a-time path), but jobs/s and latency tie with aiohttp's within the noise:
one backend's runs spread 2-10k jobs/s and 3-24 ms at p50; round by round, over these 5
rounds and 5 earlier ones on redis-py 5.3.1, this client won 6 of 10 on jobs/s and 5 of
10 on p50 (the earlier run's medians had aiohttp ahead on jobs/s, 5,516 against 5,058).
httpx is behind on every figure. The margin matters where CPU is the limit: many
workers or clients per core.

It speaks what the tether API answers: one request written with one ``write`` on a
pooled connection; a response with ``Content-Length`` or chunked. It raises only
``OSError``, ``TimeoutError`` and ``ValueError`` (a malformed answer); ``HttpSession``
translates those, at the one boundary (``_client_http.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MAX_HEADER = 64 * 1024


class StaleConnection(Exception):
    """A pooled connection turned out closed before any answer came.

    The request may or may not have reached the server (it can close an idle connection
    while our request is on its way, or after it has acted on it), so only a request
    that is safe to repeat is sent again; any other raises this to the caller.
    """


class FastTransport:
    """A pool of keep-alive connections to one ``http://host:port``."""

    def __init__(
        self, url: str, *, max_connections: int = 100, headers: dict[str, str] | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"FastTransport speaks plain http:// only, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self._host_header = f"host: {self.host}:{self.port}\r\n"
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.max_idle = max_connections

    @staticmethod
    def supports(url: str) -> bool:
        return urlsplit(url).scheme == "http"

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        timeout: float | None,
        *,
        repeatable: bool = False,
    ) -> tuple[int, bytes]:
        """One exchange; ``target`` is the path with its query string. ``repeatable``:
        the request may be sent twice without harm (a GET, or a POST carrying an
        idempotency key), so a pooled connection found closed is retried on a new one."""
        head = f"{method} {self.prefix}{target} HTTP/1.1\r\n{self._host_header}{self._extra}"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += "content-length: 0\r\n"
        data = head.encode("latin-1") + b"\r\n" + (body or b"")
        async with self._slots, asyncio.timeout(timeout):
            while True:
                conn, reused = self._checkout()
                if conn is None:
                    conn = await asyncio.open_connection(self.host, self.port, limit=MAX_HEADER * 4)
                try:
                    status, payload, keep = await self._exchange(conn, data, reused)
                except StaleConnection:
                    if repeatable:
                        continue  # closed by the server while idle: on a fresh one
                    raise
                if keep and len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                else:
                    self._close(conn)
                return status, payload

    def _checkout(self) -> tuple[_Conn | None, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn[0].at_eof() or conn[1].is_closing():
                self._close(conn)
                continue
            return conn, True
        return None, False

    async def _exchange(self, conn: _Conn, data: bytes, reused: bool) -> tuple[int, bytes, bool]:
        reader, writer = conn
        try:
            writer.write(data)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                nothing = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if reused and nothing:
                    raise StaleConnection from exc
                raise
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                payload = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                payload = await self._chunked(reader)
            else:
                raise ValueError(f"an HTTP {status} answer without a length")
        except BaseException:
            self._close(conn)
            raise
        return status, payload, headers.get("connection", "").lower() != "close"

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    @staticmethod
    def _close(conn: _Conn) -> None:
        with contextlib.suppress(Exception):
            conn[1].close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)
            with contextlib.suppress(Exception):
                await conn[1].wait_closed()
