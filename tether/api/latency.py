"""The latency middleware: notes when a request reached its route, so ``Metrics`` can
observe the time to the start of its response (``app.py``'s ``before_send`` hook does,
per route template).

Cost per request: one ``perf_counter()`` and one scope item here, and one histogram
observation (a cached label child) when the response starts; see docs/observability.md
for the measurement. Paths no route serves never reach it (their count is kept, their
latency is not).
"""

from __future__ import annotations

from time import perf_counter

from litestar.types import ASGIApp, Receive, Scope, Send

from tether.api.metrics import SCOPE_START


def latency_middleware(app: ASGIApp) -> ASGIApp:
    async def timed(scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_START] = perf_counter()  # type: ignore[literal-required]
        await app(scope, receive, send)

    return timed
