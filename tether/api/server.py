"""Run the API under uvicorn: ``serve(host, port, settings)`` (``tether api`` calls it)."""

from __future__ import annotations

import importlib.util
import logging
from types import FrameType

import uvicorn
from litestar import Litestar

from tether.api.app import create_app
from tether.api.settings import ApiSettings
from tether.api.slow_clients import timed_protocol

# Long polls last up to 30 s; on shutdown they are cut after this many seconds (workers
# simply poll again, elsewhere) rather than holding the process for their full wait.
GRACEFUL_SHUTDOWN_SECONDS = 3


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class _Server(uvicorn.Server):
    """uvicorn, ending the app's long polls as soon as a shutdown signal arrives (uvicorn
    itself would wait for them, then cut them off)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        app = self.config.app
        services = app.state.get("services") if isinstance(app, Litestar) else None
        if services is not None:
            services.notifier.close_waits_threadsafe()


def uvicorn_config(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ApiSettings | None = None,
    *,
    log_level: str = "warning",
) -> uvicorn.Config:
    """The uvicorn configuration ``serve`` uses: uvloop when installed, and httptools
    with deadlines for reading requests (``slow_clients.py``)."""
    settings = settings or ApiSettings.from_env()
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop" if _have("uvloop") else "asyncio",
        http=timed_protocol(settings.header_timeout, settings.body_timeout),
        lifespan="on",
        # One line per request would cost more than the request itself on the hot path.
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # Workers keep their connection between polls; keep it open a bit past one poll.
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ApiSettings | None = None,
    *,
    log_level: str = "warning",
) -> None:
    """Serve the API until SIGINT/SIGTERM."""
    config = uvicorn_config(host, port, settings, log_level=log_level)
    logging.getLogger("tether.api").info("tether API listening on http://%s:%d", host, port)
    _Server(config).run()
