"""Concurrency limits with real workers killed mid-job (kill -9): the limit is never
exceeded while jobs move to other workers, and no slot leaks (every job finishes, the
running counts end at zero)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from proc_stack import Stack, wait_until
from redis import Redis

pytestmark = pytest.mark.processes

LIMIT, KEY_LIMIT = 3, 1
JOBS = 45


def sample_running(stack: Stack, stop: threading.Event, seen: list[tuple[int, int, int]]) -> None:
    """Every 10 ms: leases held (running jobs as the plane sees them), and the running
    counts of the function and of its key."""
    pk = stack.keys.partition(0)
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        while not stop.is_set():
            pipe = redis.pipeline(transaction=False)
            pipe.zcard(pk.leases)
            pipe.hget(pk.running, "nap")
            pipe.hget(pk.running, "nap/acct")
            leases, fn, key = pipe.execute()
            seen.append((int(leases), int(fn or 0), int(key or 0)))
            time.sleep(0.01)
    finally:
        redis.close()


def test_a_concurrency_limit_holds_and_never_leaks_when_workers_are_killed(
    stack: Stack,
) -> None:
    stack.api()
    stack.orchestrator()
    workers = {f"machine-{n}": stack.worker(f"machine-{n}") for n in range(3)}  # 10 slots each
    put = httpx.put(
        f"{stack.url}/v1/limits/nap",
        json={"concurrency": LIMIT},
        headers=stack.headers(),
        timeout=10,
    )
    assert put.status_code == 200, put.text
    seen: list[tuple[int, int, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_running, args=(stack, stop, seen), daemon=True)
    sampler.start()

    def running_on() -> set[str]:
        listed = httpx.get(
            f"{stack.url}/v1/jobs",
            params={"status": "running", "function": "nap"},
            headers=stack.headers(),
            timeout=10,
        ).json()["jobs"]
        return {job["machine"] for job in listed}

    def busy_worker() -> str | None:
        return next((m for m in running_on() if m in workers and workers[m].alive), None)

    try:
        # Every third job also needs the one slot of its key, "acct".
        body = {
            "jobs": [
                {"function": "nap", "input": 0.5}
                | ({"concurrency_key": "acct", "concurrency_limit": KEY_LIMIT} if n % 3 else {})
                for n in range(JOBS)
            ]
        }
        submitted = httpx.post(
            f"{stack.url}/v1/jobs/batch", json=body, headers=stack.headers(), timeout=10
        )
        assert submitted.status_code == 201, submitted.text
        jobs = submitted.json()["jobs"]
        for round_ in range(2):
            # Kill -9 a worker while it runs jobs, and start another in its place.
            victim = wait_until(busy_worker, 30, "a worker running a job")
            workers[victim].kill()
            workers[f"machine-new-{round_}"] = stack.worker(f"machine-new-{round_}")
        done = [stack.job(j["id"], wait=60) for j in jobs]
        wait_until(lambda: seen and seen[-1] == (0, 0, 0), 15, "every slot given back")
    finally:
        stop.set()
        sampler.join()
    most = tuple(max(s[i] for s in seen) for i in range(3))
    print(f"\n{len(seen)} samples; most leases, function slots, key slots at once: {most}")

    assert [j["status"] for j in done] == ["completed"] * JOBS
    assert most[0] <= LIMIT and most[1] <= LIMIT and most[2] <= KEY_LIMIT
    assert most[0] == LIMIT  # the limit was reached, not merely never hit
    assert any(j["attempt"] > 1 for j in done), "some job must have been on a killed worker"
    pk = stack.keys.partition(0)
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        assert redis.exists(pk.running, pk.parked("nap", "acct")) == 0
    finally:
        redis.close()
