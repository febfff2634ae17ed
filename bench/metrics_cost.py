"""What /metrics adds to a request, in-process: the latency middleware plus the latency
observation at response start, and the note a results batch leaves for the outcome
sampler. Prints microseconds per call (best of 5 rounds of N calls).

    .venv/bin/python bench/metrics_cost.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tether.api.latency import latency_middleware
from tether.api.metrics import Metrics

N = 100_000


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    return None


def best(fn: Any) -> float:
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        rounds.append((time.perf_counter() - t0) / N * 1e6)
    return min(rounds)


async def main() -> None:
    metrics = Metrics()
    timed = latency_middleware(_noop)
    route = "/v1/machines/{machine_id}/heartbeat"

    async def bare() -> None:
        for _ in range(N):
            await _noop({"type": "http", "method": "POST"}, None, None)

    async def with_latency() -> None:
        for _ in range(N):
            scope: dict[str, Any] = {"type": "http", "method": "POST"}
            await timed(scope, None, None)
            metrics.observe_latency(scope, route)

    results = {}
    for name, fn in (("bare call", bare), ("middleware + observe", with_latency)):
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            await fn()
            rounds.append((time.perf_counter() - t0) / N * 1e6)
        results[name] = min(rounds)
    engine: Any = None

    def note() -> None:
        for i in range(N):
            metrics.outcomes._pending.clear()
            metrics.outcomes._task = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
            metrics.outcomes.add(engine, [(f"job{i}", "completed")])

    results["outcome note (1 result)"] = best(note)
    for name, us in results.items():
        print(f"{name:28} {us:6.2f} us")
    print(
        f"latency cost per request: {results['middleware + observe'] - results['bare call']:.2f} us"
    )


if __name__ == "__main__":
    asyncio.run(main())
