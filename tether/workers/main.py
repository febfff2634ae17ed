"""Entry point of a worker process, for ``tether worker`` and for programs of their own.

    run_worker(settings, *, url=None, machine_id=None) -> None

``settings`` is ``"package.module:WorkerSettings"``, the settings class or object itself,
a dict of settings, or a ``WorkerConfig``; ``url`` (default: the settings'
``tether_url``, else ``$TETHER_URL``, else ``http://127.0.0.1:8000``) and ``machine_id``
override the settings. Blocks until the worker stops: the first SIGTERM or SIGINT stops it
gracefully (see ``tether.workers.worker``), a second one skips the grace period. Bad
settings raise ``tether.errors.ConfigurationError`` before anything starts. A sync job
still running in its thread after the stop does not keep the process alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from tether.workers.settings import WorkerConfig
from tether.workers.worker import Worker

log = logging.getLogger("tether.worker")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (the API uses it too): a cheaper poll/result loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_worker(
    settings: str | WorkerConfig | Any,
    *,
    url: str | None = None,
    machine_id: str | None = None,
) -> None:
    """Run one worker in this process until SIGTERM/SIGINT."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    worker = Worker(settings, url=url, machine_id=machine_id)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(worker))
    deadline = time.monotonic() + 1.0  # idle pool threads exit at once; give them that
    for thread in threading.enumerate():
        if thread.name.startswith("tether-job"):
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in threading.enumerate() if t.name.startswith("tether-job")]
    if stuck:
        # Sync jobs that ignored their timeout or the shutdown: their jobs are released
        # or reported already, and Python would wait for the threads at exit forever.
        log.warning("%d job threads still running; exiting without them", len(stuck))
        logging.shutdown()
        os._exit(0)


async def _serve(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        force = signals > 1
        log.info(
            "%s: %s",
            signal.Signals(signum).name,
            "stopping now" if force else "stopping gracefully",
        )
        worker.stop(force=force)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await worker.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
