"""An aiohttp-backed transport with ``FastTransport``'s interface, for measurement only.

``HttpSession`` uses it when ``TETHER_HTTP_BACKEND=aiohttp`` (``bench/end_to_end.py`` sets
it to compare the hand-written ``_client_fast`` with aiohttp's C-accelerated client; the
figures are in ``_client_fast``'s docstring). aiohttp is not a dependency of tether: it
comes with the ``bench`` extra, and this module is imported only when that backend is
asked for.

Like ``FastTransport`` it raises only ``OSError``, ``TimeoutError`` and ``ValueError``
(a malformed answer): aiohttp's exceptions are mapped here, so ``HttpSession`` turns them
into the same typed errors. aiohttp itself re-sends a request whose reused connection
closed before any answer only for idempotent methods (GET, PUT, DELETE...); a POST only
when the caller says it is ``repeatable`` (it carries an idempotency key), once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import aiohttp

_JSON = {"content-type": "application/json"}


class AiohttpTransport:
    """One ``aiohttp.ClientSession`` (created on first use, in the running loop)."""

    def __init__(
        self, url: str, *, max_connections: int = 100, headers: dict[str, str] | None = None
    ) -> None:
        # Here, not at the top: aiohttp (and yarl, which comes with it) are optional.
        import aiohttp
        import yarl

        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"AiohttpTransport speaks plain http:// only, not {url!r}")
        self.base = url.rstrip("/")
        self.max_connections = max_connections
        self.headers = dict(headers or {})
        self._aiohttp = aiohttp
        self._url = yarl.URL
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = self._aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0)
            self._session = self._aiohttp.ClientSession(
                connector=connector, headers=self.headers, raise_for_status=False
            )
        return self._session

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        timeout: float | None,
        *,
        repeatable: bool = False,
    ) -> tuple[int, bytes]:
        """One exchange; ``target`` is the path with its (already encoded) query string."""
        aiohttp = self._aiohttp
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        # encoded=True: HttpSession already quoted the target; yarl need not re-quote it.
        url = self._url(self.base + target, encoded=True)
        headers = _JSON if body is not None else None
        try:
            for attempt in (1, 2):
                try:
                    async with self._client().request(
                        method, url, data=body, headers=headers, timeout=client_timeout
                    ) as response:
                        return response.status, await response.read()
                except aiohttp.ServerDisconnectedError:
                    if not repeatable or attempt == 2:
                        raise
            raise AssertionError("unreachable")
        except (OSError, TimeoutError):
            raise  # ClientOSError, ServerTimeoutError and the timeout itself are these already
        except aiohttp.ClientConnectionError as exc:  # e.g. ServerDisconnectedError
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:  # a malformed answer (bad status line, payload)
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
