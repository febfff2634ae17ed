"""``tether dev``: the whole control plane on one machine, in one command.

A real Redis server (the system binary, else the one a pip package ships) with its AOF in
``./.tether/``, the API, an orchestrator and, if asked, worker processes. Each runs as a
child process with its output prefixed by its name, so a crash in one is visible and
isolated; Ctrl-C (or SIGTERM) stops them in order: workers first (they hand back what
they hold and deregister), then the orchestrator, the API, and Redis last.

Dev mode owns what it uses (``prepare`` below, before anything starts): the folder is
locked (a second ``tether dev`` on it refuses, naming the first one's PID), the API port
is checked free (a busy port is an error, not someone else's server reported as ours),
and the Redis port is the one recorded in ``./.tether/dev.json`` (see
``tether.devstate``), so it stays the same across restarts. Every child dies with
``tether dev``, even a kill -9 of it (PR_SET_PDEATHSIG on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tether.dev_keys import DevKeys, ensure_dev_keys
from tether.devstate import (
    DEFAULT_DATA,
    DEFAULT_DEV_REDIS_PORT,
    STATE_FILE,
    DevLock,
    read_state,
    write_state,
)
from tether.redis_server import RedisServer, die_with, die_with_parent, free_port, port_is_free

__all__ = ["EXAMPLE_WORKER", "DevError", "DevMode", "die_with_parent", "examples_root"]

EXAMPLE_WORKER = "examples.hello:WorkerSettings"
STOP_GRACE = {"worker": 15.0}  # seconds before SIGKILL; workers finish in-flight jobs
DEFAULT_GRACE = 5.0


def _print(line: str) -> None:
    print(line, flush=True)


class DevError(Exception):
    """Dev mode could not start (no Redis binary, API never came up, ...)."""


def examples_root() -> Path:
    """The folder holding ``examples/``: the source checkout tether runs from."""
    return Path(__file__).resolve().parent.parent


# Signals whose handler GNU make runs while it waits for its children to end.
_MAKE_FATAL = (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM)


def _proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def parent_is_make(pid: int) -> bool:
    return _proc_status(pid).get("Name", "").strip() in ("make", "gmake")


def make_is_stopping(pid: int) -> bool:
    """Whether GNU make ``pid`` is in its fatal-signal handler: there it has the signal
    blocked (while the handler runs) and waits for its children to end."""
    blocked = int(_proc_status(pid).get("SigBlk", "0"), 16)
    return any(blocked & (1 << (sig - 1)) for sig in _MAKE_FATAL)


async def stop_with_make(stop: asyncio.Event, out: Callable[[str], None]) -> None:
    """Under ``make dev``, stop when make is interrupted or gone.

    make forwards SIGTERM to its children, and Ctrl-C in a terminal reaches the whole
    foreground group, but ``kill -INT <make>`` reaches make alone: it then waits, in its
    handler, for children that would never end. So ``tether dev`` watches its parent
    (one /proc read every 0.25 s, Linux only; a no-op when the parent is not make)."""
    parent = os.getppid()
    if not parent_is_make(parent):
        return
    while not stop.is_set():
        await asyncio.sleep(0.25)
        if os.getppid() != parent or make_is_stopping(parent):
            out("make was interrupted: stopping")
            stop.set()
            return


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None

    @property
    def role(self) -> str:
        return self.name.split("-")[0]

    async def start(self, out: Callable[[str], None]) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches dev only; dev stops them in order
            preexec_fn=die_with(os.getpid()),
        )
        self.pump = asyncio.create_task(self._pump(out))

    async def _pump(self, out: Callable[[str], None]) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            out(f"{self.name:<13}| {raw.decode(errors='replace').rstrip()}")

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(
                    self.process.wait(), STOP_GRACE.get(self.role, DEFAULT_GRACE)
                )
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self.pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pump, 2.0)
        return self.process.returncode


@dataclass
class DevMode:
    host: str = "127.0.0.1"
    port: int = 8000
    data: Path = Path(".tether")
    redis_port: int | None = None
    workers: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    out: Callable[[str], None] = _print
    keys: DevKeys | None = None  # made (or found) in `data` once Redis is up

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _env(self, redis_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env["TETHER_REDIS_URL"] = redis_url
        env["TETHER_URL"] = self.url
        env["PYTHONUNBUFFERED"] = "1"
        # `examples.hello` and the user's own modules import from the checkout and cwd.
        paths = [str(examples_root()), os.getcwd(), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def children(self, redis_url: str) -> list[Child]:
        cli = [sys.executable, "-m", "tether.cli", "--log-level", self.log_level]
        env = self._env(redis_url)
        kids = [
            Child("api", [*cli, "api", "--host", self.host, "--port", str(self.port)], env),
            Child("orchestrator", [*cli, "orchestrator"], env),
        ]
        worker_env = dict(env)
        if self.keys is not None:
            worker_env["TETHER_API_KEY"] = self.keys.machine
        for index, spec in enumerate(self.workers, start=1):
            kids.append(
                Child(f"worker-{index}", [*cli, "worker", spec, "--url", self.url], worker_env)
            )
        return kids

    @property
    def _auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys.admin}"} if self.keys else {}

    async def _wait_ready(self, kids: list[Child], machines: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0, headers=self._auth_headers) as http:
            while time.monotonic() < deadline:
                for kid in kids:
                    if kid.process is not None and kid.process.returncode is not None:
                        raise DevError(f"{kid.name} exited with code {kid.process.returncode}")
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    healthy = (await http.get(f"{self.url}/healthz")).status_code == 200
                    # Wait for the workers too, so the printed curl line works at once.
                    listed = (await http.get(f"{self.url}/v1/machines")).json()["machines"]
                    # Alive after the answer too: the answer must be our API's.
                    alive = all(k.process is None or k.process.returncode is None for k in kids)
                    if healthy and alive and len(listed) >= machines:
                        return
                await asyncio.sleep(0.05)
        raise DevError(f"the API (or a worker) was not ready on {self.url} within {timeout:.0f} s")

    def banner(self, redis: RedisServer) -> str:
        lines = [
            "",
            f"tether dev is running: {self.url}",
            f"  API           {self.url}   (OpenAPI: {self.url}/schema)",
            f"  Redis         {redis.url}   (AOF in {redis.directory})",
            "  orchestrator  1",
        ]
        lines += [f"  worker        {spec}" for spec in self.workers]
        fn = "hello" if EXAMPLE_WORKER in self.workers else "YOUR_FUNCTION"
        auth = f" -H 'authorization: Bearer {self.keys.admin}'" if self.keys else ""
        lines += [
            "",
            "Run a job:",
            f"  curl -s -X POST {self.url}/v1/jobs -H 'content-type: application/json'{auth} "
            f'-d \'{{"function": "{fn}", "input": {{"name": "world"}}}}\'',
            f"  curl -s '{self.url}/v1/jobs/JOB_ID?wait=10'{auth}",
            "",
            f"  export TETHER_URL={self.url}",
            f"  (API keys, admin and machine, are in {self.data}/: the CLI and workers started "
            "in this folder use them)",
        ]
        if self.data.resolve() == (Path.cwd() / DEFAULT_DATA).resolve():
            lines.append(
                f"  (tether inspect, run from {Path.cwd()}, finds this Redis through "
                f"{DEFAULT_DATA / STATE_FILE})"
            )
        else:  # commands look for the dev Redis in ./.tether only
            lines.append(f"  export TETHER_REDIS_URL={redis.url}   (for tether inspect)")
        if shutil.which("tether") is None:
            here = Path(sys.executable).parent
            lines.append(
                f"  (tether is not on PATH: use {here / 'tether'}, or `source {here / 'activate'}`)"
            )
        lines += ["Ctrl-C stops everything.", ""]
        return "\n".join(lines)

    # -- owning the folder and the ports ------------------------------------------------

    def check_api_port(self) -> None:
        """A busy API port is an error now, before anything starts: else another server
        would answer our readiness check and be reported as this one."""
        if not port_is_free(self.port, self.host):
            raise DevError(
                f"port {self.port} on {self.host} is already in use (another server?): "
                f"choose another with --port N (with make: make dev PORT=N)"
            )

    def choose_redis_port(self) -> int:
        """--redis-port, else the port recorded in dev.json (the same one at every start),
        else DEFAULT_DEV_REDIS_PORT; a free port, said loudly, if that one is taken."""
        if self.redis_port is not None:
            if not port_is_free(self.redis_port):
                raise DevError(f"--redis-port {self.redis_port} is already in use")
            return self.redis_port
        recorded = read_state(self.data).get("redis_port")
        wanted = recorded if isinstance(recorded, int) else DEFAULT_DEV_REDIS_PORT
        if port_is_free(wanted):
            return wanted
        port = free_port()
        origin = f"recorded in {self.data / STATE_FILE}" if recorded else "the default"
        self.out(
            f"note: Redis port {wanted} ({origin}) is in use by another program; the dev "
            f"Redis takes {port} instead, and keeps it from now on (TETHER_REDIS_URL="
            f"redis://127.0.0.1:{port}/0)"
        )
        return port

    def prepare(self) -> int:
        """Everything checked or set up in the data folder before a process starts
        (the lock is already held). Returns the Redis port. Per-folder set-up that other
        features need at dev start (say, a dev API key) belongs here."""
        self.check_api_port()
        return self.choose_redis_port()

    # -- running -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> int:
        """Lock the folder, start everything, supervise until ``stop`` or a crash."""
        with DevLock(self.data):
            redis = RedisServer(self.data.resolve(), port=self.prepare(), stop_with_parent=True)
            redis.start()
            write_state(
                self.data,
                redis_port=redis.port,
                redis_url=redis.url,
                api_url=self.url,
                pid=os.getpid(),
            )
            watcher = asyncio.create_task(stop_with_make(stop, self.out))
            try:
                return await self._run(redis, stop)
            finally:
                watcher.cancel()
                write_state(self.data, pid=None)

    async def _run(self, redis: RedisServer, stop: asyncio.Event) -> int:
        kids: list[Child] = []
        try:
            # Keys first: the API refuses to start without one, workers need theirs.
            self.keys = await ensure_dev_keys(self.data, redis.url)
            kids = self.children(redis.url)
            # The API first, so workers do not start by retrying against a closed port.
            core, workers = kids[:2], kids[2:]
            for kid in core:
                await kid.start(self.out)
            if not await self._first(self._wait_ready(core, machines=0), stop):
                return 0  # Ctrl-C before everything was up
            for kid in workers:
                await kid.start(self.out)
            if not await self._first(self._wait_ready(kids, machines=len(workers)), stop):
                return 0  # Ctrl-C before everything was up
            self.out(self.banner(redis))
            return await self._supervise(kids, stop)
        finally:
            # Workers first (they hand back unfinished jobs through the API), Redis last.
            for kid in reversed(kids):
                code = await kid.stop()
                if code not in (None, 0, -signal.SIGTERM):
                    self.out(f"{kid.name:<13}| exited with code {code}")
            redis.stop()
            self.out("tether dev stopped")

    @staticmethod
    async def _first(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
        """Await ``work`` unless ``stop`` is set first; returns whether it finished."""
        task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
        task.result()
        return True

    async def _supervise(self, kids: list[Child], stop: asyncio.Event) -> int:
        waits = {asyncio.create_task(kid.wait()): kid for kid in kids}
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *waits], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopped, *waits]:
            if task not in done:
                task.cancel()
        if stopped in done:
            return 0
        crashed = next(waits[t] for t in done if t in waits)
        self.out(
            f"{crashed.name} exited with code {crashed.process and crashed.process.returncode}; "
            "stopping everything"
        )
        return 1
