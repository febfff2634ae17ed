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

pytestmark = [
    pytest.mark.processes,
    pytest.mark.single_node(reason="compose starts one Redis server of its own"),
]

COMPOSE = ROOT / "compose.yaml"


def _services(profile: str | None = None) -> dict[str, dict[str, Any]]:
    """The services ``docker compose [--profile P] up`` would start of their own: those of
    no profile, or (``profile``) those of that profile."""
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return {
        name: s
        for name, s in services.items()
        if (profile in s.get("profiles", []) if profile else not s.get("profiles"))
    }


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


def test_the_cluster_profile_has_three_primaries_three_replicas_and_the_tether_commands() -> None:
    services = _services("cluster")
    nodes = [n for n, s in services.items() if s["command"][0] == "redis-server"]
    assert len(nodes) == 6
    create = services["cluster-create"]["command"]
    assert create[:3] == ["tether", "cluster", "create"]
    assert create[create.index("--replicas") + 1] == "1"
    commands = [s["command"][:2] for n, s in services.items() if n not in nodes]
    assert commands.count(["tether", "orchestrator"]) == 2
    assert ["tether", "api"] in commands and ["tether", "worker"] in commands


def test_the_cluster_profile_commands_run_a_job_end_to_end(tmp_path: Path, keys: Keys) -> None:
    services = _services("cluster")
    nodes = {n: s for n, s in services.items() if s["command"][0] == "redis-server"}
    servers: list[RedisServer] = []
    procs: list[Proc] = []
    local = Localized(services, 0)
    try:
        for name, service in nodes.items():
            # The compose command on a local binary, port and folder; the bus port named
            # (a local port + 10000 may be past 65535).
            extra = [*service["command"][1:], "--cluster-port", str(free_port())]
            server = RedisServer(tmp_path / name, binary=find_server_binary(), extra_args=extra)
            servers.append(server.start())
            local.ports[name] = server.port
        others = {n: s for n, s in services.items() if n not in nodes}
        create = others.pop("cluster-create")
        made = Proc(
            "cluster-create",
            local.command("cluster-create", create["command"]),
            local.env(create, keys.prefix, {}),
            tmp_path / "cluster-create.log",
        ).start()
        assert made.popen is not None and made.popen.wait(90) == 0, made.output()
        assert "TETHER_REDIS_URL=redis+cluster://" in made.output()
        url = made.output().split("TETHER_REDIS_URL=", 1)[1].split()[0]
        admin = make_key(url, keys.prefix, "admin", "ops")
        exported = {"TETHER_MACHINE_KEY": make_key(url, keys.prefix, "machine", "worker")}
        auth = {"authorization": f"Bearer {admin}"}
        for name, service in others.items():
            argv = local.command(name, service["command"])
            env = local.env(service, keys.prefix, exported)
            procs.append(Proc(name, argv, env, tmp_path / name).start())
        [api] = [f"http://127.0.0.1:{local.ports[n]}" for n in others if n.startswith("api")]

        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "the API to answer /healthz", every=0.1)
        wait_until(
            lambda: bool(
                httpx.get(f"{api}/v1/machines", headers=auth, timeout=2).json()["machines"]
            ),
            60,
            "the worker to register",
            every=0.1,
        )
        for n in range(6):  # jobs in several partitions, so on several shards
            created = httpx.post(
                f"{api}/v1/jobs",
                json={"function": "hello", "input": {"name": f"cluster {n}"}},
                headers=auth,
                timeout=10,
            ).json()
            done = httpx.get(
                f"{api}/v1/jobs/{created['id']}", params={"wait": 30}, headers=auth, timeout=40
            ).json()
            assert done["status"] == "completed", done
            assert done["result"]["message"] == f"hello, cluster {n}!"
        assert all(p.alive for p in procs), {p.name: p.output()[-2000:] for p in procs}
    finally:
        for proc in procs:
            proc.kill()
        for server in servers:
            server.kill()
        for proc in procs:
            print(f"----- {proc.name} -----\n{proc.output()[-3000:]}")
