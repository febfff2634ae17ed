"""Fixtures that start real tether processes against the session's Redis server, each
test under its own key prefix (see proc_stack.py). On teardown every process is killed;
when the test failed, their logs are printed so pytest shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from proc_stack import Stack

from tether.queue.keys import Keys
from tether.redis_server import RedisServer


@pytest.fixture
def stack(
    redis_server: RedisServer,
    keys: Keys,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    """A stack with a key of each role; this test's own clients get the admin key in
    $TETHER_API_KEY (its processes get theirs from ``Stack.env``)."""
    s = Stack(redis_server.url, keys, tmp_path)
    assert s.test_keys is not None
    monkeypatch.setenv("TETHER_API_KEY", s.test_keys.admin)
    yield s
    report = getattr(request.node, "rep_call", None)
    s.close(show_logs=report is None or report.failed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Lets the fixture above know whether the test failed, to print the process logs.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
