"""DBOS's side of bench/workflows.py, in its own process (DBOS is a process singleton).

Prints one JSON line: {"step_ms": [...], "workflows_per_s": x}. Usage:
    python bench/dbos_workflows.py POSTGRES_URL STEPS_RUNS CONCURRENT_WORKFLOWS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from dbos import DBOS, DBOSConfig

STEP_TIMES: list[float] = []


@DBOS.step()
async def noop(i: int) -> int:
    return i


@DBOS.workflow()
async def many_steps(n: int) -> int:
    for i in range(n):
        t0 = time.perf_counter()
        await noop(i)
        STEP_TIMES.append((time.perf_counter() - t0) * 1000)
    return n


@DBOS.workflow()
async def three_steps(x: int) -> int:
    a = await noop(x)
    b = await noop(a + 1)
    return await noop(b + 1)


async def main(url: str, runs: int, concurrent: int) -> None:
    DBOS(config=DBOSConfig(name="tether-bench", system_database_url=url))
    DBOS.launch()
    try:
        for _ in range(runs):
            handle = await DBOS.start_workflow_async(many_steps, 20)
            await handle.get_result()
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(DBOS.start_workflow_async(three_steps, i) for i in range(concurrent))
        )
        await asyncio.gather(*(h.get_result() for h in handles))
        elapsed = time.perf_counter() - t0
        print(json.dumps({"step_ms": STEP_TIMES, "workflows_per_s": concurrent / elapsed}))
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
