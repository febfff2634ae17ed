"""SIGTERM on a worker process: it stops polling, waits out its grace period, hands its
unfinished job back (so another worker starts it at once, not after a lease timeout),
and exits 0."""

from __future__ import annotations

import signal
import time

import pytest
from proc_stack import Stack

pytestmark = pytest.mark.processes

SPEC = "worker_sigterm_jobs:WorkerSettings"


def test_sigterm_releases_the_unfinished_job_to_run_elsewhere_at_once(stack: Stack) -> None:
    stack.api()
    leaving = stack.worker("machine-leaving", SPEC)
    job = stack.submit("long_nap", 60)
    stack.wait_job(job["id"], lambda j: j["status"] == "running", "running")

    leaving.signal(signal.SIGTERM)
    assert leaving.popen is not None
    assert leaving.popen.wait(15) == 0
    released = stack.job(job["id"])
    assert (released["status"], released["attempt"]) == ("queued", 0)

    started = time.monotonic()
    stack.worker("machine-staying", SPEC)
    moved = stack.wait_job(job["id"], lambda j: j["status"] == "running", "running again")
    assert moved["machine"] == "machine-staying"
    assert moved["attempt"] == 1  # the released attempt did not count
    print(f"\nreleased job running elsewhere {time.monotonic() - started:.2f} s after start")


def test_a_sync_job_stuck_in_its_thread_does_not_keep_a_stopped_worker_alive(
    stack: Stack,
) -> None:
    stack.api()
    leaving = stack.worker("machine-stuck", SPEC)
    job = stack.submit("stuck")
    stack.wait_job(job["id"], lambda j: j["status"] == "running", "running")

    leaving.signal(signal.SIGTERM)
    assert leaving.popen is not None
    assert leaving.popen.wait(15) == 0
    assert stack.job(job["id"])["status"] == "queued"
