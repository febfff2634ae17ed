"""Job expiry with real processes: a job nobody can start before its ``expires`` ends
``expired`` and never runs, even across an orchestrator killed with -9 and restarted,
and a client waiting on it hears at once."""

from __future__ import annotations

import time

import pytest
from proc_stack import Stack

pytestmark = pytest.mark.processes


def test_a_job_no_worker_starts_in_time_expires_across_an_orchestrator_restart(
    stack: Stack,
) -> None:
    stack.api()
    orchestrator = stack.orchestrator()
    stack.worker("machine-a").kill()  # registered `nap`, then gone: nobody serves it
    job = stack.submit("nap", 0.1, expires=1.5)
    orchestrator.kill()  # kill -9 while the job waits: the expiry is in Redis
    stack.orchestrator("orchestrator-2")

    waited_from = time.monotonic()
    done = stack.job(job["id"], wait=20)
    waited = time.monotonic() - waited_from

    print(f"\nexpires=1.5 s: the waiter heard 'expired' after {waited:.2f} s")
    assert done["status"] == "expired"
    assert (done["attempt"], done["started_at"], done["machine"]) == (0, None, None)
    assert done["error"]["type"] == "Expired"
    assert waited < 5


def test_a_job_a_worker_starts_before_its_expiry_completes(stack: Stack) -> None:
    stack.api()
    stack.orchestrator()
    stack.worker("machine-a")
    job = stack.submit("nap", 0.1, expires=30)

    done = stack.job(job["id"], wait=20)

    assert done["status"] == "completed"
