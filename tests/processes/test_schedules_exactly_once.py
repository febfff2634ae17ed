"""Schedules under replicas and restarts: two orchestrator processes race on every tick
of an every-second schedule, one is killed -9 and another started in its place; each
tick still starts exactly one job, and no tick in between is lost.

The orchestrators serve before the schedule is put: a process starting on a loaded
machine can take seconds, and ticks due before any pass ran are passed over by the `skip`
policy (only the latest due one fires, the others count as `missed`): the policy at work,
not a tick lost to a race."""

from __future__ import annotations

import re
import time
from datetime import datetime

import httpx
import pytest
from proc_stack import Proc, Stack, wait_until

pytestmark = pytest.mark.processes

STARTED = re.compile(r"schedule every-second started (sched:every-second:(\d+))")


def _jobs(stack: Stack) -> list[str]:
    response = httpx.get(
        f"{stack.url}/v1/jobs",
        params={"function": "probe", "limit": 1000},
        headers=stack.headers(),
        timeout=10,
    )
    return [job["id"] for job in response.json()["jobs"]]


def _serving(stack: Stack, name: str) -> Proc:
    """An orchestrator whose passes run (its namespace loop has started)."""
    proc = stack.orchestrator(name)
    proc.wait_for_output("serving namespace default", timeout=60)
    return proc


def test_two_orchestrators_and_a_restart_fire_each_tick_exactly_once(stack: Stack) -> None:
    stack.api()
    first = _serving(stack, "orchestrator-a")
    _serving(stack, "orchestrator-b")
    response = httpx.post(
        f"{stack.url}/v1/schedules",
        json={"name": "every-second", "function": "probe", "every": 1},
        headers=stack.headers(),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    first_tick = round(datetime.fromisoformat(response.json()["next_fire"]).timestamp() * 1000)
    wait_until(lambda: len(_jobs(stack)) >= 3, 20, "three ticks fired")

    first.kill()  # kill -9 mid-stream: whatever it was doing is either done or not
    time.sleep(1.5)
    # Counted from when it serves, so that b and c both race on the ticks below.
    _serving(stack, "orchestrator-c")
    count = len(_jobs(stack))
    wait_until(lambda: len(_jobs(stack)) >= count + 3, 20, "three more ticks fired")
    for proc in stack.procs:
        if proc.name.startswith("orchestrator") and proc.alive:
            proc.stop()

    jobs = _jobs(stack)
    ticks = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in jobs)
    by_process = {
        proc.name: [m.group(1) for m in STARTED.finditer(proc.output())]
        for proc in stack.procs
        if proc.name.startswith("orchestrator")
    }
    logged = [job_id for started in by_process.values() for job_id in started]
    schedule = httpx.get(
        f"{stack.url}/v1/schedules/every-second", headers=stack.headers(), timeout=10
    ).json()
    passed_over = (ticks[0] - first_tick) // 1000
    print(
        f"\n{len(jobs)} ticks, {passed_over} passed over before the first; started by:",
        {n: len(s) for n, s in by_process.items()},
    )

    # One job per tick, every tick from the first to the last (none lost to the kill).
    assert len(ticks) == len(set(ticks)) >= 6
    assert ticks == list(range(ticks[0], ticks[-1] + 1000, 1000))
    # No two processes started the same tick (the killed one may have died between
    # starting a tick and logging it: its log may lack that one line).
    assert len(logged) == len(set(logged)) and set(logged) <= set(jobs)
    assert len(jobs) - len(logged) <= 1
    # The counts are exact: each job started counts as fired, and the only ticks counted
    # missed are those before the first fired one (none, unless both orchestrators
    # stalled for over a second): no tick that fired counts as missed.
    assert ticks[0] >= first_tick
    assert schedule["fired"] == len(jobs)
    assert schedule["missed"] == passed_over
