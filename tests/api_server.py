"""The real API app under uvicorn on a free port, in a thread of this process: for tests
that need an HTTP API next to a worker or a client (importable, unlike conftest)."""

from __future__ import annotations

import threading

import uvicorn
from auth_helpers import TestKeys

from tether.api.server import uvicorn_config
from tether.api.settings import ApiSettings
from tether.redis_server import free_port


class ApiServer:
    """One API process's worth of server, in a thread; start and stop it at will."""

    def __init__(
        self, settings: ApiSettings, port: int | None = None, keys: TestKeys | None = None
    ) -> None:
        self.settings = settings
        self.keys = keys
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

    def headers(self, role: str = "admin") -> dict[str, str]:
        """The Authorization header of this test's key of ``role``."""
        assert self.keys is not None, "this server was made without test keys"
        return self.keys.headers(role)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
