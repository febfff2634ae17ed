"""compose.yaml runs: its services' commands, started as local processes (Docker is not
needed), serve a job end to end. Hostnames become 127.0.0.1, ports free local ones."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from proc_stack import CLI, ROOT, Proc, base_env, wait_until

from tether.queue.keys import Keys
from tether.redis_server import RedisServer, find_server_binary, free_port

pytestmark = pytest.mark.processes

COMPOSE = ROOT / "compose.yaml"


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_compose_redis_keeps_an_aof_and_never_evicts() -> None:
    command = _services()["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_compose_runs_two_apis_two_orchestrators_and_a_worker() -> None:
    commands = [s["command"][:2] for name, s in _services().items() if name != "redis"]
    assert commands.count(["tether", "api"]) == 2
    assert commands.count(["tether", "orchestrator"]) == 2
    assert commands.count(["tether", "worker"]) == 1


class Localized:
    """Maps compose hostnames and container ports to this machine."""

    def __init__(self, services: dict[str, dict[str, Any]], redis_port: int) -> None:
        self.ports = {name: free_port() for name in services if name != "redis"}
        self.ports["redis"] = redis_port

    def text(self, value: str) -> str:
        def host(match: re.Match[str]) -> str:
            return f"127.0.0.1:{self.ports[match.group(1)]}"

        return re.sub(r"\b([a-z][a-z0-9-]*):\d+\b", host, value)

    def command(self, name: str, command: list[str]) -> list[str]:
        assert command[0] == "tether", f"{name} must run a tether command"
        args = [self.text(a) for a in command[1:]]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        if "--port" in args:
            args[args.index("--port") + 1] = str(self.ports[name])
        return [*CLI, *args]

    def env(self, service: dict[str, Any], prefix: str, exported: dict[str, str]) -> dict[str, str]:
        """The service's environment, with ``${VAR...}`` taken from ``exported`` (what
        the operator exported, as compose interpolates it)."""
        env = base_env("", prefix)
        for k, v in service.get("environment", {}).items():
            value = re.sub(r"\$\{(\w+)[^}]*\}", lambda m: exported[m.group(1)], str(v))
            env[k] = self.text(value)
        return env


def make_key(redis_url: str, prefix: str, role: str, name: str) -> str:
    """What the compose.yaml comment says to run first: `tether keys create`."""
    env = base_env(redis_url, prefix)
    done = subprocess.run(
        [*CLI, "keys", "create", "--role", role, "--name", name],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_compose_commands_run_a_job_end_to_end(tmp_path: Path, keys: Keys) -> None:
    services = _services()
    redis_args = services["redis"]["command"]
    assert redis_args[0] == "redis-server"
    # The compose Redis command, on a local binary, port and folder.
    redis = RedisServer(
        tmp_path / "redis", binary=find_server_binary(), extra_args=redis_args[1:]
    ).start()
    local = Localized(services, redis.port)
    procs: list[Proc] = []
    admin = make_key(redis.url, keys.prefix, "admin", "ops")
    exported = {"TETHER_MACHINE_KEY": make_key(redis.url, keys.prefix, "machine", "worker")}
    auth = {"authorization": f"Bearer {admin}"}
    try:
        for name, service in services.items():
            if name == "redis":
                continue
            argv = local.command(name, service["command"])
            env = local.env(service, keys.prefix, exported)
            procs.append(Proc(name, argv, env, tmp_path / f"{name}.log").start())
        apis = [f"http://127.0.0.1:{local.ports[n]}" for n in services if n.startswith("api")]

        def all_healthy() -> bool:
            try:
                return all(httpx.get(f"{u}/healthz", timeout=1).status_code == 200 for u in apis)
            except httpx.HTTPError:
                return False

        wait_until(all_healthy, 60, "both APIs to answer /healthz", every=0.1)

        def worker_registered() -> bool:
            listed = httpx.get(f"{apis[0]}/v1/machines", headers=auth, timeout=2)
            return bool(listed.json()["machines"])

        wait_until(worker_registered, 60, "the worker to register", every=0.1)
        # Submit to api-1; the worker polls api-2: the replicas share everything in Redis.
        created = httpx.post(
            f"{apis[0]}/v1/jobs",
            json={"function": "hello", "input": {"name": "compose"}},
            headers=auth,
            timeout=10,
        ).json()
        done = httpx.get(
            f"{apis[1]}/v1/jobs/{created['id']}", params={"wait": 30}, headers=auth, timeout=40
        ).json()
        assert done["status"] == "completed", done
        assert done["result"]["message"] == "hello, compose!"
        assert all(p.alive for p in procs), {p.name: p.output()[-2000:] for p in procs}
    finally:
        for proc in procs:
            proc.kill()
        redis.kill()
        for proc in procs:  # pytest shows captured output only when the test failed
            print(f"----- {proc.name} -----\n{proc.output()[-3000:]}")
