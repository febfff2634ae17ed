"""Durable workflows against real processes: a full outage (Redis included), a worker
killed mid-step, a durable sleep with two orchestrators, version affinity and a change
of code under a running workflow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proc_stack import Proc, Stack, wait_until

from tether.queue.keys import Keys
from tether.redis_server import RedisServer

pytestmark = pytest.mark.processes

SPEC = "proc_workflows:WorkerSettings"


class Runs:
    """The runs API the way curl would use it, plus the side-effects file."""

    def __init__(self, stack: Stack, effects: Path) -> None:
        self.stack = stack
        self.effects = effects

    @property
    def url(self) -> str:
        return self.stack.url

    def worker(self, machine_id: str, **env: str) -> Proc:
        stack = self.stack
        proc = stack.spawn(
            machine_id,
            ["worker", SPEC, "--machine-id", machine_id],
            stack.env | {"TETHER_URL": stack.url, "WF_EFFECTS": str(self.effects), **env},
        )
        stack.wait_machines({machine_id})
        return proc

    def start(self, workflow: str, input: Any = None, **extra: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/v1/runs",
            json={"workflow": workflow, "input": input, **extra},
            headers=self.stack.headers(),
            timeout=10,
        )
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def get(self, run_id: str, wait: float = 0) -> dict[str, Any]:
        r = httpx.get(
            f"{self.url}/v1/runs/{run_id}",
            params={"wait": wait},
            headers=self.stack.headers(),
            timeout=wait + 10,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait(
        self, run_id: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def matches() -> bool:
            try:
                seen.update(self.get(run_id))
            except httpx.HTTPError:
                return False
            return check(seen)

        wait_until(matches, timeout, f"run {run_id} {what} (last seen: {seen})", every=0.05)
        return seen

    def waiting_for(self, run_id: str, kind: str) -> dict[str, Any]:
        return self.wait(
            run_id,
            lambda r: r["status"] == "waiting" and (r["waiting_on"] or {}).get("kind") == kind,
            f"waiting on {kind}",
        )

    def finished(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait(
            run_id,
            lambda r: r["status"] in ("completed", "failed", "cancelled"),
            "to finish",
            timeout,
        )

    def approve(self, run_id: str, key: str, role: str = "approver") -> dict[str, Any]:
        """Approve with the stack's key of ``role`` (its name is recorded as ``by``)."""
        r = httpx.post(
            f"{self.url}/v1/runs/{run_id}/approvals/{key}",
            json={"approved": True},
            headers=self.stack.headers(role),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def timeline(self, run_id: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/v1/runs/{run_id}/timeline", headers=self.stack.headers(), timeout=10
        )
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        return events

    def effect_lines(self) -> list[tuple[str, int]]:
        if not self.effects.exists():
            return []
        pairs = (line.split() for line in self.effects.read_text().splitlines() if line)
        return [(name, int(pid)) for name, pid in pairs]

    def count(self, name: str) -> int:
        return sum(1 for step, _ in self.effect_lines() if step == name)


@pytest.fixture
def runs(stack: Stack, tmp_path: Path) -> Runs:
    return Runs(stack, tmp_path / "effects.txt")


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    # fsync every write: the test kills Redis right after the run reaches its approval.
    server = RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always").start()
    yield server
    server.kill()


@pytest.mark.single_node(reason="kills a Redis server of its own")
def test_an_approval_survives_a_full_outage_and_no_completed_step_runs_twice(
    aof_redis: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    before = Stack(aof_redis.url, keys, tmp_path / "before")
    (tmp_path / "before").mkdir()
    # The same deployment: the same keys (they live in Redis's AOF too).
    after = Stack(aof_redis.url, keys, tmp_path / "after", test_keys=before.test_keys)
    (tmp_path / "after").mkdir()
    try:
        first = Runs(before, effects)
        before.api("api-1")
        before.orchestrator("orchestrator-1")
        worker_a = first.worker("machine-a")
        run = first.start("outage", "o-17", id="order-17")
        first.waiting_for(run["id"], "approval")

        before.close(show_logs=False)  # kill -9 worker, API and orchestrator
        aof_redis.kill()  # and Redis itself
        aof_redis.start()  # from its append-only file

        second = Runs(after, effects)
        after.api("api-2")
        after.orchestrator("orchestrator-2")
        worker_b = second.worker("machine-b")
        assert second.get(run["id"])["status"] == "waiting"
        second.approve(run["id"], "ship")
        done = second.finished(run["id"])

        assert done["status"] == "completed", done
        assert done["result"]["steps"] == ["reserve", "charge", "ship"]
        assert done["result"]["by"] == "test-approver" and done["result"]["pid"] == worker_b.pid
        lines = second.effect_lines()
        assert [name for name, _ in lines] == ["reserve", "charge", "ship"]
        assert [pid for _, pid in lines] == [worker_a.pid, worker_a.pid, worker_b.pid]
    finally:
        before.close(show_logs=False)
        after.close(show_logs=True)


def test_a_worker_killed_mid_step_three_of_five_finishes_elsewhere_without_rerunning_steps(
    stack: Stack, runs: Runs
) -> None:
    stack.api()
    stack.orchestrator()
    doomed = runs.worker("machine-doomed", WF_SLOW_STEP="s3")
    run = runs.start("five")
    wait_until(lambda: runs.count("s3") == 1, 30, "step 3 to start")

    doomed.kill()
    runs.worker("machine-next")
    done = runs.finished(run["id"])

    assert done["status"] == "completed" and done["result"] == ["s1", "s2", "s3", "s4", "s5"]
    assert [runs.count(s) for s in ("s1", "s2", "s3", "s4", "s5")] == [1, 1, 2, 1, 1]
    started = [
        e["fields"].get("machine")
        for e in runs.timeline(run["id"])
        if e["event"] == "activation_started"
    ]
    assert started == ["machine-doomed", "machine-next"]


def test_a_two_second_sleep_resumes_on_another_worker_woken_once_by_two_orchestrators(
    stack: Stack, runs: Runs
) -> None:
    stack.api()
    stack.orchestrator("orchestrator-1")
    stack.orchestrator("orchestrator-2")
    sleeper = runs.worker("machine-sleeper")
    run = runs.start("napper")
    runs.waiting_for(run["id"], "sleep")

    sleeper.kill()
    waker = runs.worker("machine-waker")
    done = runs.finished(run["id"])

    assert done["status"] == "completed" and done["result"]["pid"] == waker.pid
    assert (runs.count("before"), runs.count("after")) == (1, 1)
    events = runs.timeline(run["id"])
    wakes = [
        e
        for e in events
        if e["event"] == "activation_queued" and e["fields"].get("reason") == "timer"
    ]
    assert len(wakes) == 1


def test_a_run_keeps_its_version_while_new_runs_take_the_newest_served(
    stack: Stack, runs: Runs
) -> None:
    stack.api()
    stack.orchestrator()
    v1 = runs.worker("machine-v1", WF_DEPLOY_VERSION="1")
    old = runs.start("deploy")
    assert old["version"] == 1
    runs.waiting_for(old["id"], "approval")

    v1.stop()  # v1 workers gone...
    runs.worker("machine-v2", WF_DEPLOY_VERSION="2")  # ...v2 deployed
    wait_until(
        lambda: (
            {
                m["id"]
                for m in httpx.get(f"{runs.url}/v1/machines", headers=runs.stack.headers()).json()[
                    "machines"
                ]
            }
            == {"machine-v2"}
        ),
        15,
        "only the v2 machine to be listed",
    )
    queued = runs.approve(old["id"], "go")
    new = runs.start("deploy")
    runs.waiting_for(new["id"], "approval")
    runs.approve(new["id"], "go")
    new_done = runs.finished(new["id"])
    still = runs.get(old["id"])

    assert queued["status"] == "queued"
    assert queued["waiting_on"]["kind"] == "version" and queued["waiting_on"]["version"] == 1
    assert new["version"] == 2 and new_done["result"] == "v2"
    assert still["status"] == "queued" and still["version"] == 1

    runs.worker("machine-v1-again", WF_DEPLOY_VERSION="1")
    old_done = runs.finished(old["id"])

    assert old_done["status"] == "completed" and old_done["result"] == "v1"


def test_changing_the_step_order_under_a_running_workflow_fails_it_naming_both_steps(
    stack: Stack, runs: Runs
) -> None:
    stack.api()
    stack.orchestrator()
    old_code = runs.worker("machine-ab", WF_ORDER="ab")
    run = runs.start("reorder")
    runs.waiting_for(run["id"], "approval")

    old_code.stop()
    runs.worker("machine-ba", WF_ORDER="ba")
    runs.approve(run["id"], "go")
    done = runs.finished(run["id"])

    assert done["status"] == "failed"
    assert done["error"]["type"] == "NonDeterminismError"
    assert "step 'a'" in done["error"]["message"] and "step 'b'" in done["error"]["message"]
    assert (runs.count("a"), runs.count("b")) == (1, 0)


def test_a_run_kept_by_a_worker_killed_with_kill_9_replays_in_full_on_another(
    stack: Stack, runs: Runs
) -> None:
    stack.api()
    stack.orchestrator()
    sticky = runs.worker("machine-sticky")
    kept = runs.start("outage", "k1")
    runs.waiting_for(kept["id"], "approval")
    runs.approve(kept["id"], "ship")
    assert runs.finished(kept["id"])["status"] == "completed"
    lost = runs.start("outage", "k2")
    runs.waiting_for(lost["id"], "approval")  # kept in machine-sticky's memory

    sticky.kill()
    after = runs.worker("machine-after")
    runs.approve(lost["id"], "ship")
    done = runs.finished(lost["id"])

    def begins(run_id: str) -> list[tuple[str, str]]:
        return [
            (e["fields"]["machine"], e["fields"]["replay"])
            for e in runs.timeline(run_id)
            if e["event"] == "activation_started"
        ]

    # Alive, the machine that kept the run went on from memory ...
    assert begins(kept["id"]) == [("machine-sticky", "full"), ("machine-sticky", "sticky")]
    # ... killed, another replayed the whole history, running no step twice.
    assert done["status"] == "completed" and done["result"]["pid"] == after.pid
    assert begins(lost["id"]) == [("machine-sticky", "full"), ("machine-after", "full")]
    assert [runs.count(s) for s in ("reserve", "charge", "ship")] == [2, 2, 2]
