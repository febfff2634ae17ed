"""A worker that dies or freezes mid-job: the job finishes on another worker, and the
frozen one's late result is never committed."""

from __future__ import annotations

import signal
import time

import pytest
from proc_stack import Stack, timeline, wait_until

pytestmark = pytest.mark.processes


def _running_on(machine: str | None = None):  # type: ignore[no-untyped-def]
    def check(job: dict) -> bool:  # type: ignore[type-arg]
        return job["status"] == "running" and (machine is None or job["machine"] == machine)

    return check


def test_a_job_whose_worker_is_killed_completes_on_another_worker(stack: Stack) -> None:
    stack.api()
    stack.orchestrator()
    workers = {"machine-a": stack.worker("machine-a"), "machine-b": stack.worker("machine-b")}
    job = stack.submit("nap", 0.5)
    first = stack.wait_job(job["id"], _running_on(), "running")["machine"]
    other = next(m for m in workers if m != first)

    killed_at = time.monotonic()
    workers[first].kill()  # kill -9: no goodbye, no released lease
    moved = stack.wait_job(job["id"], _running_on(other), f"running on {other}", timeout=15)
    moved_at = time.monotonic()
    done = stack.job(job["id"], wait=15)
    done_at = time.monotonic()

    print(
        f"\nkill -9 to running on {other}: {moved_at - killed_at:.2f} s; "
        f"to completed (0.5 s job): {done_at - killed_at:.2f} s"
    )
    assert moved["attempt"] == 2
    assert done["status"] == "completed"
    assert done["result"]["machine"] == other


def test_a_frozen_workers_late_result_is_rejected_and_the_second_workers_result_stands(
    stack: Stack,
) -> None:
    stack.api()
    stack.orchestrator()
    frozen = stack.worker("machine-frozen")
    job = stack.submit("nap", 1.0)
    stack.wait_job(job["id"], _running_on("machine-frozen"), "running on machine-frozen")

    frozen.signal(signal.SIGSTOP)
    healthy = stack.worker("machine-healthy")
    stack.wait_job(job["id"], _running_on("machine-healthy"), "re-leased", timeout=15)
    # The frozen worker wakes with its job's sleep long over: it reports (or learns from
    # its heartbeat that the lease is gone) while the healthy worker holds the job.
    frozen.signal(signal.SIGCONT)
    wait_until(
        lambda: (
            f"job {job['id']}: result rejected" in frozen.output()
            or f"job {job['id']}: lease lost" in frozen.output()
        ),
        15,
        "the frozen worker to learn that its lease is gone",
    )
    done = stack.job(job["id"], wait=15)
    events = [(e["event"], e.get("machine", "")) for e in timeline(stack, job["id"])]
    print("\ntimeline:", events)

    assert done["status"] == "completed"
    assert done["result"]["machine"] == "machine-healthy"
    assert [e for e in events if e[0] == "completed"] == [("completed", "")]
    assert events[-2] == ("claimed", "machine-healthy")
    assert frozen.alive and healthy.alive
