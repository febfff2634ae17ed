"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright
with the system browser): API, orchestrator and a worker as real processes, a workflow
waiting for approval; a person signs in, approves from the inbox with the keyboard, and
the run's page (open in another tab) turns completed without a reload.

Every page is saved as a screenshot; the test prints the directory (TETHER_SCREENSHOTS
names one to keep them, e.g. to refresh docs/img).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proc_stack import Proc, Stack, wait_until

pytestmark = [pytest.mark.processes, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SPEC = "proc_workflows:WorkerSettings"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium binary on this machine (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def keys_of(stack: Stack) -> Any:
    """The stack's test keys where the API wants keys (else None)."""
    return getattr(stack, "test_keys", None)


def auth(stack: Stack) -> dict[str, str]:
    keys = keys_of(stack)
    return {"Authorization": f"Bearer {keys.admin}"} if keys else {}


def worker(stack: Stack, machine_id: str, effects: Path) -> Proc:
    env = stack.env | {"TETHER_URL": stack.url, "WF_EFFECTS": str(effects)}
    if keys_of(stack):
        env["TETHER_API_KEY"] = keys_of(stack).machine
    proc = stack.spawn(machine_id, ["worker", SPEC, "--machine-id", machine_id], env)
    stack.wait_machines({machine_id})
    return proc


def start_run(stack: Stack, workflow: str, input: Any, run_id: str) -> None:
    r = httpx.post(
        f"{stack.url}/v1/runs",
        json={"workflow": workflow, "input": input, "id": run_id},
        headers=auth(stack),
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text


def run_status(stack: Stack, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/v1/runs/{run_id}", headers=auth(stack), timeout=10)
    body: dict[str, Any] = response.json()
    return body


class Pages:
    """A signed-in tab, with a screenshot of each page it shows."""

    def __init__(self, browser: Any, stack: Stack, shots: Path, viewport: dict[str, int]) -> None:
        self.stack = stack
        self.shots = shots
        self.page = browser.new_page(viewport=viewport)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        self.page.on(
            "response",
            lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )

    def sign_in(self, shot: str | None = None, role: str = "admin") -> None:
        keys = keys_of(self.stack)
        key = getattr(keys, role) if keys else ""  # an API without keys: sign in with none
        page = self.page
        page.goto(f"{self.stack.url}/dashboard/")
        page.wait_for_selector("#api-key")
        if shot:
            self.shot(shot)
        page.fill("#api-key", key)
        page.keyboard.press("Enter")  # the form submits from the keyboard
        page.wait_for_selector("h1:has-text('Runs')")
        page.wait_for_selector("#live.on", timeout=10_000)

    def open(self, hash_: str, ready: str) -> None:
        self.page.evaluate("h => { location.hash = h; }", hash_)  # no reload
        self.page.wait_for_selector(ready, timeout=10_000)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


def test_approving_from_the_inbox_completes_the_run_page_live(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("TETHER_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")
    stack.api()
    stack.orchestrator()
    worker(stack, "dash-m1", tmp_path / "effects.txt")
    start_run(stack, "outage", "o-1", "order-1")
    start_run(stack, "five", None, "five-1")
    wait_until(
        lambda: (run_status(stack, "order-1").get("waiting_on") or {}).get("kind") == "approval",
        30,
        "order-1 to wait for approval",
    )
    wait_until(lambda: run_status(stack, "five-1")["status"] == "completed", 30, "five-1")

    # Tab 1: the run's page, waiting.
    watcher = Pages(browser, stack, shots, DESKTOP)
    watcher.sign_in(shot="signin")
    watcher.page.wait_for_selector("a[href='#/runs/order-1']")
    watcher.shot("runs")
    watcher.open("#/runs/order-1", "[data-status='waiting']")
    watcher.page.wait_for_selector(".wf")
    watcher.page.evaluate("() => { window.__notReloaded = true; }")
    watcher.shot("run-waiting")

    # Tab 2: the inbox; the comment typed, then Tab to Approve and Enter.
    person = Pages(browser, stack, shots, DESKTOP)
    person.sign_in()
    person.open("#/approvals", "article[data-run='order-1']")
    person.shot("approvals")
    person.page.fill("#comment-order-1", "looks right")
    person.page.focus("#comment-order-1")
    person.page.keyboard.press("Tab")
    focused = person.page.evaluate("() => document.activeElement.textContent")
    assert focused == "Approve"
    person.page.keyboard.press("Enter")
    person.page.wait_for_selector("text=Nothing waits for a decision.", timeout=10_000)

    # Tab 1 turns completed by itself (events), without a reload.
    watcher.page.wait_for_selector("h1 [data-status='completed']", timeout=20_000)
    assert watcher.page.evaluate("() => window.__notReloaded") is True
    watcher.page.wait_for_selector("#run-status-value:has-text('completed')")
    # Its log lines, followed live on the open page: the last step's came in after it.
    watcher.page.wait_for_selector("#log-lines .log-line:has-text('effect ship')", timeout=20_000)
    steps = watcher.page.inner_text("#log-lines")
    assert steps.index("effect reserve") < steps.index("effect charge") < steps.index("effect ship")
    assert "[step 0 reserve]" in steps
    # The run's trace id, to find the same structure in a tracing backend.
    assert watcher.page.inner_text("#run-trace-id") == run_status(stack, "order-1")["trace_id"]
    watcher.shot("run-completed")
    assert run_status(stack, "order-1")["result"]["steps"] == ["reserve", "charge", "ship"]

    # The other pages, each with its screenshot.
    watcher.open("#/jobs", "td a[href^='#/jobs/']")
    watcher.shot("jobs")
    job_link = watcher.page.get_attribute("td a[href^='#/jobs/']", "href")
    watcher.open(job_link, "h1 [data-status]")
    watcher.page.wait_for_selector("#log-note:not(:has-text('Loading'))")
    # Its attempts, from the run's timeline: the first one, on the worker's machine.
    watcher.page.wait_for_selector("tr[data-attempt='1'] td:has-text('dash-m1')")
    watcher.shot("job")
    # Cursor paging: one run a page, the next page by the API's next_cursor.
    watcher.open("#/runs?limit=1", "button.next-page")
    first = watcher.page.inner_text("tbody td a")
    watcher.page.click("button.next-page")
    watcher.page.wait_for_selector("button.first-page")
    assert "cursor=" in watcher.page.evaluate("() => location.hash")
    assert watcher.page.inner_text("tbody td a") != first
    watcher.open("#/functions", "td[data-finished='wf:outage@1']")
    finished = watcher.page.inner_text("td[data-finished='wf:outage@1']")
    assert int(finished) >= 2  # its two activations, from this API's /metrics
    # The percentiles follow Prometheus' histogram_quantile (linear in the bucket).
    buckets = "[{le: 0.1, count: 1}, {le: 1, count: 3}, {le: Infinity, count: 4}]"
    assert watcher.page.evaluate(f"() => quantile(0.5, {buckets})") == pytest.approx(0.55)
    assert watcher.page.evaluate(f"() => quantile(0.99, {buckets})") == 1
    watcher.shot("functions")
    watcher.open("#/machines", "td:has-text('dash-m1')")
    watcher.shot("machines")

    # Phone width: the same pages, readable (no horizontal scroll of the page itself).
    phone = Pages(browser, stack, shots, PHONE)
    phone.sign_in()
    phone.page.wait_for_selector("a[href='#/runs/order-1']")
    phone.shot("runs-phone")
    phone.open("#/runs/order-1", "h1 [data-status='completed']")
    phone.shot("run-phone")
    width = phone.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1

    # A viewer sees a run waiting for approval, is offered no way to decide, and the API
    # refuses the decision if the viewer's key sends it anyway.
    start_run(stack, "outage", "o-2", "order-2")
    wait_until(
        lambda: (run_status(stack, "order-2").get("waiting_on") or {}).get("kind") == "approval",
        30,
        "order-2 to wait for approval",
    )
    viewer = Pages(browser, stack, shots, DESKTOP)
    viewer.sign_in(role="viewer")
    viewer.open("#/runs/order-2", "h1 [data-status='waiting']")
    viewer.page.wait_for_selector("[data-read-only='decide']")
    assert viewer.page.locator("button:has-text('Approve')").count() == 0
    assert viewer.page.locator("button:has-text('Deny')").count() == 0
    assert viewer.page.locator("button:has-text('Cancel run')").count() == 0
    viewer.shot("run-viewer")
    viewer.open("#/approvals", "article[data-run='order-2'] [data-read-only='decide']")
    assert viewer.page.locator("article[data-run='order-2'] button").count() == 0
    refused = viewer.page.evaluate(
        """async () => (await fetch("/v1/runs/order-2/approvals/ship", {
            method: "POST", headers: {...authHeaders(), "Content-Type": "application/json"},
            body: JSON.stringify({approved: true})})).status"""
    )
    assert refused == (403 if keys_of(stack) else 200)
    # That refusal is the one error the viewer's tab may show (the request, and
    # Chromium's console line about it); the page itself asked for nothing refused.
    if keys_of(stack):
        viewer.errors.remove(f"403 {stack.url}/v1/runs/order-2/approvals/ship")
        viewer.errors.remove(
            "Failed to load resource: the server responded with a status of 403 (Forbidden)"
        )
    assert run_status(stack, "order-2")["status"] == "waiting"

    for tab in (watcher, person, phone, viewer):
        assert tab.errors == []  # no script errors, no Content-Security-Policy refusals
    assert sorted(p.name for p in shots.iterdir() if p.suffix == ".png") >= sorted(
        f"{n}.png"
        for n in [
            "signin",
            "runs",
            "run-waiting",
            "approvals",
            "run-completed",
            "jobs",
            "job",
            "functions",
            "machines",
            "runs-phone",
            "run-phone",
            "run-viewer",
        ]
    )
