"""Real tether processes for tests: `python -m tether.cli ...` children, each writing to
a log file, and the HTTP calls a curl user would make."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from auth_helpers import TestKeys, create_keys_sync

from tether.queue.keys import Keys
from tether.redis_server import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLI = [sys.executable, "-m", "tether.cli"]
JOBS = "proc_jobs:WorkerSettings"  # tests/processes/proc_jobs.py


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def base_env(redis_url: str, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TETHER_REDIS_URL=redis_url,
        TETHER_PREFIX=prefix,
        # The tests read a job's timeline as evidence of which machine did what.
        TETHER_JOB_TIMELINES="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")]),
    )
    return env


@dataclass
class Proc:
    """One child process with its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.cwd,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def kill(self) -> None:
        """kill -9 and reap."""
        if self.alive:
            self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.popen is None:
            return None
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # a stopped process cannot handle TERM
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            if text in self.output():
                return True
            if not self.alive:
                raise AssertionError(
                    f"{self.name} exited ({self.popen and self.popen.returncode}) before "
                    f"printing {text!r}:\n{self.output()[-3000:]}"
                )
            return False

        wait_until(seen, timeout, f"{self.name} to print {text!r}")


@dataclass
class Stack:
    """Starts API, orchestrator and worker processes for one test."""

    redis_url: str
    keys: Keys
    tmp: Path
    procs: list[Proc] = field(default_factory=list)
    api_port: int = field(default_factory=free_port)
    # A key of each role in this stack's deployment (made in Redis at once): processes
    # get the admin key in $TETHER_API_KEY, workers the machine key.
    test_keys: TestKeys | None = None

    def __post_init__(self) -> None:
        if self.test_keys is None:
            self.test_keys = create_keys_sync(self.redis_url, self.keys.prefix)

    @property
    def env(self) -> dict[str, str]:
        assert self.test_keys is not None
        return base_env(self.redis_url, self.keys.prefix) | {"TETHER_API_KEY": self.test_keys.admin}

    def headers(self, role: str = "admin") -> dict[str, str]:
        """The Authorization header of this stack's key of ``role``."""
        assert self.test_keys is not None
        return self.test_keys.headers(role)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, [*CLI, *args], env or self.env, self.tmp / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def api(self, name: str = "api") -> Proc:
        proc = self.spawn(name, ["api", "--host", "127.0.0.1", "--port", str(self.api_port)])
        self.wait_healthy(proc)
        return proc

    def wait_healthy(self, proc: Proc, timeout: float = 30.0) -> None:
        def healthy() -> bool:
            if not proc.alive:
                raise AssertionError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, f"{proc.name} to answer /healthz", every=0.05)

    def orchestrator(self, name: str = "orchestrator") -> Proc:
        return self.spawn(name, ["orchestrator"])

    def worker(self, machine_id: str, spec: str = JOBS) -> Proc:
        assert self.test_keys is not None
        env = self.env | {"TETHER_URL": self.url, "TETHER_API_KEY": self.test_keys.machine}
        proc = self.spawn(machine_id, ["worker", spec, "--machine-id", machine_id], env)
        self.wait_machines({machine_id})
        return proc

    def wait_machines(self, ids: set[str], timeout: float = 30.0) -> None:
        def listed() -> bool:
            try:
                body = httpx.get(
                    f"{self.url}/v1/machines", headers=self.headers(), timeout=2
                ).json()
            except httpx.HTTPError:
                return False
            return ids <= {m["id"] for m in body["machines"]}

        wait_until(listed, timeout, f"machines {sorted(ids)} to register", every=0.05)

    # -- HTTP, the way curl would do it ----------------------------------------------

    def submit(self, function: str, input: Any = None, **extra: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/v1/jobs",
            json={"function": function, "input": input, **extra},
            headers=self.headers(),
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    def job(self, job_id: str, wait: float | None = None) -> dict[str, Any]:
        params = {"wait": wait} if wait is not None else {}
        response = httpx.get(
            f"{self.url}/v1/jobs/{job_id}",
            params=params,
            headers=self.headers(),
            timeout=(wait or 0) + 10,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_job(
        self, job_id: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def matches() -> bool:
            found.update(self.job(job_id))
            return check(found)

        wait_until(matches, timeout, f"job {job_id} to be {what} (last seen: {found})")
        return found

    def close(self, show_logs: bool) -> None:
        for proc in reversed(self.procs):
            proc.kill()
        if show_logs:
            for proc in self.procs:
                print(f"----- {proc.name} (exit {proc.popen and proc.popen.returncode}) -----")
                print(proc.output()[-5000:])


def timeline(stack: Stack, job_id: str) -> list[dict[str, str]]:
    """The job's timeline events straight from Redis (event, machine, attempt...)."""
    import asyncio

    from tether.queue.config import QueueConfig
    from tether.queue.engine import QueueEngine
    from tether.queue.redis_py import redis_client

    async def read() -> list[dict[str, str]]:
        redis = redis_client(stack.redis_url, decode_responses=True)
        try:
            return await QueueEngine(redis, QueueConfig(keys=stack.keys)).timeline(job_id)
        finally:
            await redis.aclose()

    return asyncio.run(read())
