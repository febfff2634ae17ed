"""Webhooks end to end through the processes users run (API, worker, two orchestrators):
a workflow waits for an approval and then completes, and each of its events reaches a
receiver on loopback once, signed, although two orchestrators race for every delivery;
the receiver's first answer is a 500, so one delivery is retried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proc_stack import Stack, wait_until
from test_workflows_durability import Runs
from webhook_receiver import Receiver

from tether.webhooks import verify_signature

pytestmark = pytest.mark.processes

ORDERS = 5


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def test_two_orchestrators_deliver_each_run_event_once_signed(
    stack: Stack, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_WEBHOOK_BACKOFF_MS", "100")
    monkeypatch.setenv("TETHER_PUBLIC_URL", "https://tether.example.com")
    stack.api()
    created = httpx.post(
        f"{stack.url}/v1/webhooks",
        json={"url": receiver.url, "events": ["run.awaiting_approval", "run.completed"]},
        headers=stack.headers(),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    receiver.answers = [500]
    stack.orchestrator("orchestrator-a")
    stack.orchestrator("orchestrator-b")
    runs = Runs(stack, tmp_path / "effects")
    runs.worker("m1")

    ids = [runs.start("outage", f"o{i}")["id"] for i in range(ORDERS)]
    for run_id in ids:
        runs.waiting_for(run_id, "approval")
        runs.approve(run_id, "ship")
    for run_id in ids:
        assert runs.finished(run_id)["status"] == "completed"
    wait_until(lambda: len(receiver.received) >= 2 * ORDERS + 1, 30, "every event delivered")

    deliveries = httpx.get(
        f"{stack.url}/v1/webhooks/{hook['id']}/deliveries",
        headers=stack.headers(),
        timeout=10,
    ).json()["deliveries"]
    bodies = [r.json() for r in receiver.received]
    for request in receiver.received:
        verify_signature(hook["secret"], request.headers["tether-signature"], request.body)
    sent = Counter(r.headers["tether-delivery"] for r in receiver.received)
    # Every event once, except the one the receiver answered 500 (sent again, the same).
    assert sorted(sent.values()) == [1] * (2 * ORDERS - 1) + [2]
    assert Counter((b["type"], b["run"]["id"]) for b in bodies[1:]) == Counter(
        {(kind, run_id): 1 for run_id in ids for kind in ("run.awaiting_approval", "run.completed")}
    )
    assert {d["state"] for d in deliveries} == {"delivered"}
    assert sorted(d["attempts"] for d in deliveries) == [1] * (2 * ORDERS - 1) + [2]
    approval = next(b for b in bodies if b["type"] == "run.awaiting_approval")
    assert approval["waiting_on"]["key"] == "ship"
    assert approval["links"]["dashboard"].startswith("https://tether.example.com/dashboard/#/runs/")
