"""`tether jobs` and `tether inspect` against a running API and Redis."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from proc_stack import CLI, ROOT, Stack

from tether.queue.keys import Keys
from tether.redis_server import RedisServer

pytestmark = pytest.mark.processes


def tether(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = stack.env | {"TETHER_URL": stack.url}
    return subprocess.run(
        [*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One API and one worker for the whole module: each test uses its own jobs."""
    stack = Stack(redis_server.url, Keys(prefix=f"t{uuid.uuid4().hex[:10]}"),
                  tmp_path_factory.mktemp("cli-jobs"))  # fmt: skip
    try:
        stack.api()
        stack.worker("machine-a")  # registers `nap`, so the API accepts jobs for it
        yield stack
    finally:
        stack.close(show_logs=False)


def test_jobs_list_shows_a_submitted_job(served: Stack) -> None:
    job = served.submit("nap", 0, delay=600)
    listing = tether(served, "jobs", "list")
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split()[:3] == ["ID", "FUNCTION", "STATUS"]
    assert any(row.split()[:3] == [job["id"], "nap", "delayed"] for row in rows)


def test_jobs_show_waits_for_the_result_and_prints_json(served: Stack) -> None:
    job = served.submit("nap", 0)
    shown = tether(served, "jobs", "show", job["id"], "--wait", "10")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["status"] == "completed"
    assert body["result"]["machine"] == "machine-a"


def test_jobs_cancel_cancels_a_waiting_job(served: Stack) -> None:
    job = served.submit("nap", 0, delay=600)
    cancelled = tether(served, "jobs", "cancel", job["id"])
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{job['id']}: cancelled"
    assert served.job(job["id"])["status"] == "cancelled"


def test_cancelling_a_finished_job_exits_1_with_the_reason(served: Stack) -> None:
    job = served.submit("nap", 0)
    served.job(job["id"], wait=10)
    cancelled = tether(served, "jobs", "cancel", job["id"])
    assert cancelled.returncode == 1
    assert "already completed" in cancelled.stderr


def test_jobs_show_of_an_unknown_job_exits_1(served: Stack) -> None:
    shown = tether(served, "jobs", "show", "no-such-job")
    assert shown.returncode == 1
    assert "no-such-job" in shown.stderr


def test_tether_logs_follow_prints_a_jobs_lines_as_they_come_and_exits_when_it_ends(
    served: Stack,
) -> None:
    job = served.submit("chatter", {"lines": 5, "every": 0.3})
    env = served.env | {"TETHER_URL": served.url}
    follower = subprocess.Popen(
        [*CLI, "logs", job["id"], "--follow"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = follower.communicate(timeout=60)

    assert follower.returncode == 0, err
    printed = [line for line in out.splitlines() if "chatter" in line]
    assert [line.split("proc.chatter: ")[1] for line in printed] == [
        f"chatter {i} of 5" for i in range(1, 6)
    ]
    assert served.job(job["id"])["status"] == "completed"  # it ended: so did the follow


def test_tether_logs_finds_a_job_by_its_id_and_prints_json_lines(served: Stack) -> None:
    job = served.submit("chatter", {"lines": 2, "every": 0})
    served.job(job["id"], wait=30)

    shown = tether(served, "logs", job["id"], "--json")

    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(x["message"], x["job"], x["level"]) for x in lines] == [
        ("chatter 1 of 2", job["id"], "INFO"),
        ("chatter 2 of 2", job["id"], "INFO"),
    ]


def test_tether_logs_of_an_unknown_id_fails_with_not_found(served: Stack) -> None:
    shown = tether(served, "logs", "no-such-id")

    assert shown.returncode == 1
    assert "no job no-such-id" in shown.stderr
