"""Helpers shared by the worker tests (importable, unlike conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from tether.api.server import uvicorn_config
from tether.api.settings import ApiSettings
from tether.redis_server import free_port


def settings(*functions: Any, **options: Any) -> dict[str, Any]:
    """WorkerSettings as a dict, with test-friendly defaults."""
    return {"functions": list(functions), "shutdown_grace": 5.0, **options}


class LogWatch(logging.Handler):
    """Sets an event when a log record containing ``text`` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self._loop.call_soon_threadsafe(self.seen.set)


@contextlib.contextmanager
def watch_log(name: str, text: str) -> Iterator[LogWatch]:
    logger = logging.getLogger(name)
    handler = LogWatch(text)
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


class ApiServer:
    """One API process's worth of server, in a thread; start and stop it at will."""

    def __init__(self, settings: ApiSettings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ApiServer:
        config = uvicorn_config("127.0.0.1", self.port, self.settings, log_level="error")
        config.timeout_graceful_shutdown = 1
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="tether-api", daemon=True)
        self._thread.start()
        # Server.started flips once the socket listens and the lifespan has run.
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the API server failed to start")
            threading.Event().wait(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
