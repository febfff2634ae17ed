"""The one HTTP boundary of the client and the workers.

Every request goes through ``HttpSession.request``: bodies are encoded with orjson, error
responses are rebuilt into the typed errors of ``tether.errors`` (from the API's
``{"error": {...}}`` shape), and transport errors become ``ApiUnavailable`` raised
``from`` the original. Nothing else in tether touches httpx or socket exceptions.

Two backends sit behind it: ``_client_fast.FastTransport`` for plain ``http://`` (about a
tenth of httpx's CPU per request: see that module), and httpx for ``https://`` or when a
caller hands in an httpx transport (tests use ``httpx.MockTransport``).

``TETHER_HTTP_BACKEND`` (``fast``, the default; ``aiohttp``; ``httpx``) picks the backend
for ``http://``, for measurement only: ``bench/end_to_end.py`` compares them side by side.
``aiohttp`` needs the ``bench`` extra (``_client_aiohttp``).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import orjson

from tether._client_fast import FastTransport, StaleConnection
from tether.errors import ApiUnavailable, ConfigurationError, TetherError, error_from_body

if TYPE_CHECKING:
    from tether._client_aiohttp import AiohttpTransport

DEFAULT_URL = "http://127.0.0.1:8000"
BACKENDS = ("fast", "aiohttp", "httpx")
_JSON_HEADERS = {"content-type": "application/json"}
# Where `tether dev` keeps the keys it made (mode 0600), relative to the current folder.
DEV_KEY_DIR = ".tether"
DEV_KEY_FILES = {"client": "admin.key", "machine": "machine.key"}


def resolve_api_key(key: str | None = None, kind: str = "client") -> str | None:
    """The API key to send: the argument, else ``$TETHER_API_KEY``, else the key `tether
    dev` wrote to ``./.tether/`` (``admin.key`` for clients and the CLI, ``machine.key``
    for workers), else None (no Authorization header)."""
    if key:
        return key
    from_env = os.environ.get("TETHER_API_KEY")
    if from_env:
        return from_env.strip()
    try:
        with open(os.path.join(DEV_KEY_DIR, DEV_KEY_FILES[kind])) as f:
            return f.read().strip() or None
    except OSError:
        return None


def resolve_url(url: str | None) -> str:
    """The API's base URL: the argument, else ``$TETHER_URL``, else the local default."""
    resolved = (url or os.environ.get("TETHER_URL") or DEFAULT_URL).rstrip("/")
    if not resolved.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"the tether URL must start with http:// or https://, not {resolved!r}",
            details={"url": resolved},
        )
    return resolved


def http_backend() -> str:
    """The backend for plain ``http://``: ``$TETHER_HTTP_BACKEND``, else ``fast``."""
    backend = os.environ.get("TETHER_HTTP_BACKEND") or "fast"
    if backend not in BACKENDS:
        raise ConfigurationError(
            f"TETHER_HTTP_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}",
            details={"backend": backend},
        )
    return backend


def _orjson_default(value: Any) -> Any:
    # pydantic models (inputs, payloads) travel as their JSON form.
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_orjson_default, option=orjson.OPT_SERIALIZE_NUMPY)


# What the fast and aiohttp backends raise when the API cannot be reached or answers garbage.
_FAST_ERRORS = (
    OSError,
    EOFError,
    TimeoutError,
    ValueError,
    asyncio.LimitOverrunError,
    StaleConnection,
)


class HttpSession:
    """A keep-alive HTTP/1.1 connection pool to one tether API."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        api_key: str | None = None,
        key_kind: str = "client",
    ) -> None:
        self.url = resolve_url(url)
        headers = dict(headers or {})
        self.api_key = key = resolve_api_key(api_key, key_kind)
        if key and not any(h.lower() == "authorization" for h in headers):
            headers["authorization"] = f"Bearer {key}"
        self.timeout = timeout
        self._fast: FastTransport | AiohttpTransport | None = None
        self._http: httpx.AsyncClient | None = None
        backend = http_backend()
        if transport is None and FastTransport.supports(self.url) and backend != "httpx":
            if backend == "aiohttp":
                from tether._client_aiohttp import AiohttpTransport  # imported only when chosen

                self._fast = AiohttpTransport(
                    self.url, max_connections=max_connections, headers=headers
                )
            else:
                self._fast = FastTransport(
                    self.url, max_connections=max_connections, headers=headers
                )
            return
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            headers=headers,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        repeatable: bool | None = None,
    ) -> bytes:
        """Send one request; returns the raw JSON body of a 2xx answer.

        ``repeatable`` (default: only for GET) says the request may be sent twice without
        harm, e.g. a POST with an idempotency key; only such a request is sent again when
        the pooled connection it went out on turns out closed. Any other raises
        ``ApiUnavailable`` then: it may have been carried out (urllib3 and httpx retry
        only idempotent requests too).

        Raises the typed error the API answered with, or ``ApiUnavailable`` when the API
        cannot be reached (connection refused, reset, timed out).
        """
        _, raw = await self.request_status(
            method, path, body=body, params=params, timeout=timeout, repeatable=repeatable
        )
        return raw

    async def request_status(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        repeatable: bool | None = None,
    ) -> tuple[int, bytes]:
        """``request``, answering with the status code too (201 created, 200 found)."""
        content = None if body is None else dumps(body)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if self._fast is not None:
            target = f"{path}?{urlencode(query, doseq=True)}" if query else path
            try:
                status, raw = await self._fast.request(
                    method,
                    target,
                    content,
                    self.timeout if timeout is None else timeout,
                    repeatable=method == "GET" if repeatable is None else repeatable,
                )
            except _FAST_ERRORS as exc:
                raise self._unavailable(exc) from exc
            if status >= 400:
                raise _error_for(status, raw)
            return status, raw
        assert self._http is not None
        try:
            response = await self._http.request(
                method,
                path,
                content=content,
                params=query or None,
                headers=_JSON_HEADERS if content is not None else None,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        if response.status_code >= 400:
            raise _error_for(response.status_code, response.content)
        return response.status_code, response.content

    def _unavailable(self, exc: BaseException) -> ApiUnavailable:
        reason = str(exc) or type(exc).__name__
        return ApiUnavailable(
            f"cannot reach the tether API at {self.url}: {type(exc).__name__}: {reason}",
            details={"url": self.url},
        )

    async def json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        repeatable: bool | None = None,
    ) -> Any:
        raw = await self.request(
            method, path, body=body, params=params, timeout=timeout, repeatable=repeatable
        )
        return orjson.loads(raw) if raw else None

    async def aclose(self) -> None:
        if self._fast is not None:
            await self._fast.aclose()
        if self._http is not None:
            await self._http.aclose()


def _error_for(status: int, content: bytes) -> TetherError:
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = content[:500].decode(errors="replace")
    if status in (502, 504) and not isinstance(body, dict):
        # A proxy in front of the API answered for it: the API is not reachable.
        return ApiUnavailable(
            f"HTTP {status} from a proxy: the API is unreachable", details={"status": status}
        )
    return error_from_body(status, body)
