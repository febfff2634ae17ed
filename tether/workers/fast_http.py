"""A small HTTP/1.1 keep-alive client for an activation's hot path (``ctx.step``).

Why not the worker's httpx session: a durable step is one request whose latency the
workflow waits on, and httpx spends about 0.5-2 ms of CPU per request in its own layers
(measured in bench/workflows.py on the 2-core CI box), more than the API and Redis
together. This client writes one request with one ``write`` on a pooled connection and
reads one ``Content-Length`` (or chunked) response: a step costs about a third.

It speaks only what the tether API answers (plain ``http://``; JSON bodies). Errors are
translated here, at this boundary, like ``_client_http`` does for httpx: connection
failures and timeouts become ``ApiUnavailable``, error responses the typed error their
body names.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import orjson

from tether.errors import ApiUnavailable, ConfigurationError, TetherError, error_from_body

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MAX_HEADER = 64 * 1024


class FastHttp:
    """A pool of keep-alive connections to one ``http://host:port`` API."""

    def __init__(self, url: str, *, timeout: float = 30.0, max_idle: int = 32) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigurationError(f"FastHttp speaks plain http:// only, not {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.max_idle = max_idle
        self._idle: list[_Conn] = []

    @staticmethod
    def supports(url: str) -> bool:
        return urlsplit(url).scheme == "http"

    async def post(self, path: str, body: bytes) -> bytes:
        """POST a JSON body; returns the raw body of a 2xx answer, raises otherwise."""
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        # A pooled connection may have been closed by the server while idle: one more
        # try on a fresh connection covers that (the endpoints are idempotent by token).
        for attempt in (0, 1):
            fresh = not self._idle
            try:
                async with asyncio.timeout(self.timeout):
                    conn = self._idle.pop() if self._idle else await self._connect()
                    status, data, keep = await self._exchange(conn, head + body)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                if attempt == 0 and not fresh and not isinstance(exc, TimeoutError):
                    continue
                raise ApiUnavailable(
                    f"cannot reach the tether API at {self.url}: {type(exc).__name__}: {exc}",
                    details={"url": self.url},
                ) from exc
            if keep and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                self._close(conn)
            if status >= 400:
                raise self._error(status, data)
            return data
        raise AssertionError("unreachable")

    async def _connect(self) -> _Conn:
        return await asyncio.open_connection(self.host, self.port, limit=MAX_HEADER * 4)

    async def _exchange(self, conn: _Conn, request: bytes) -> tuple[int, bytes, bool]:
        reader, writer = conn
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                data = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                data = await self._chunked(reader)
            else:
                raise ValueError("a response without a length")
        except BaseException:
            self._close(conn)
            raise
        keep = headers.get("connection", "").lower() != "close"
        return status, data, keep

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
    def _error(status: int, data: bytes) -> TetherError:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = data[:500].decode(errors="replace")
        if status in (502, 504) and not isinstance(body, dict):
            return ApiUnavailable(
                f"HTTP {status} from a proxy: the API is unreachable", details={"status": status}
            )
        return error_from_body(status, body)

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
