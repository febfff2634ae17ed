"""An API started the way users start it (`tether api`), left idle for longer than every
timeout between it and Redis, still wakes a waiting caller the moment a job finishes.

With redis-py 8 its notification subscription never came up (RESP3 push replies and a
5 s default socket timeout), and every wait fell back to the 1 s re-check: each call took
a second. This is the test that would have caught it."""

from __future__ import annotations

import statistics
import time

import pytest
from proc_stack import Stack

from tether import Client

pytestmark = pytest.mark.processes

IDLE = 12.0  # > redis-py 8's 5 s default socket timeout and the notifier's 10 s PING


def test_a_call_after_the_api_sat_idle_past_every_timeout_finishes_at_once(stack: Stack) -> None:
    api = stack.api()
    stack.orchestrator()
    stack.worker("machine-a")
    time.sleep(IDLE)
    latencies = []
    with Client(stack.url) as client:
        for _ in range(5):
            started = time.perf_counter()
            client.call("noop", wait=10)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.5)  # idle again: each call finds the plane quiet
    # The failure mode is a 1 s fallback re-check; a working subscription is a few ms.
    assert statistics.median(latencies) < 0.1, latencies
    assert "subscription down" not in api.output()
