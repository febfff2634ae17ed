"""One worker process ("machine"): wires settings, registry, transport, poller,
heartbeat, executor and result batcher together, and runs their lifecycle.

Start: ``on_startup(ctx)``, then register with the API (the first heartbeat, retried
until the API answers), then poll and heartbeat until ``stop()``.

Stop (SIGTERM/SIGINT, or ``stop()`` in-process): stop polling at once; give in-flight
jobs ``shutdown_grace`` seconds to finish (heartbeats go on meanwhile, so their leases
hold); cancel the rest and hand them back as ``released``, so they run elsewhere at once;
deliver every result; stop heartbeating; deregister (so the orchestrator does not declare
this machine dead later); ``on_shutdown(ctx)``. ``stop(force=True)`` (a second signal)
skips the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

from tether import tracing
from tether._client_http import HttpSession
from tether.client import AsyncClient
from tether.errors import ConfigurationError, TetherError
from tether.workers.cron import register_cron_jobs
from tether.workers.executor import Executor, Stop
from tether.workers.heartbeat import Heartbeat
from tether.workers.logs import LogShipper, capturing
from tether.workers.poller import Poller
from tether.workers.registry import Registry, func
from tether.workers.results import ResultBatcher
from tether.workers.settings import WorkerConfig, load_settings
from tether.workers.sticky import RunCache
from tether.workers.transport import MachineTransport, retrying

log = logging.getLogger("tether.worker")

FLUSH_TIMEOUT = 10.0  # seconds to deliver the last results when stopping
LOGS_FLUSH_TIMEOUT = 5.0  # seconds to ship the last captured log lines when stopping
DEREGISTER_TIMEOUT = 5.0  # seconds for the goodbye; without it the machine is reaped later


def build_registry(config: WorkerConfig, threads: ThreadPoolExecutor, worker: Worker) -> Registry:
    registry = Registry()
    for fn in config.functions:
        registry.add_function(
            fn, job_timeout=config.job_timeout, max_tries=config.max_tries, threads=threads
        )
    for job in config.cron_jobs:
        # arq serves a cron job's coroutine as a function of the cron job's name.
        registry.add_function(
            func(job.coroutine, name=job.name, timeout=job.timeout, max_tries=job.max_tries),
            job_timeout=config.job_timeout,
            max_tries=config.max_tries,
            threads=threads,
        )
    if config.workflows:
        try:
            workflow = importlib.import_module("tether.workers.workflow")
        except ModuleNotFoundError as exc:
            if exc.name != "tether.workers.workflow":
                raise
            raise ConfigurationError(
                f"WorkerSettings.workflows lists {len(config.workflows)} workflows, but this "
                "tether has no workflow engine (tether.workers.workflow is missing)"
            ) from exc
        workflow.register_workflows(registry, config.workflows, worker)
    return registry


class Worker:
    """A worker for one settings object; ``await worker.run()`` until ``stop()``."""

    def __init__(
        self,
        settings: str | WorkerConfig | Any,
        *,
        url: str | None = None,
        machine_id: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.config = load_settings(settings, url=url, machine_id=machine_id, api_key=api_key)
        self.machine_id = self.config.machine_id
        self.threads = ThreadPoolExecutor(
            max_workers=self.config.max_jobs, thread_name_prefix="tether-job"
        )
        # Shared by every job (as in arq); on_startup may put clients in it.
        self.ctx: dict[str, Any] = dict(self.config.ctx)
        self.ctx["machine_id"] = self.machine_id
        # Runs kept suspended between activations (sticky replay, sticky.py).
        self.run_cache = RunCache(self.config.max_cached_runs)
        self.registry = build_registry(self.config, self.threads, self)
        self.started = asyncio.Event()  # set once registered and polling
        self.stopped = asyncio.Event()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self.session: HttpSession | None = None
        self.executor: Executor | None = None
        self.results: ResultBatcher | None = None
        self.logs: LogShipper | None = None
        self.heartbeat: Heartbeat | None = None
        self.poller: Poller | None = None
        self.transport: MachineTransport | None = None
        self._runner: asyncio.Task[None] | None = None

    # -- control ---------------------------------------------------------------------

    def stop(self, *, force: bool = False) -> None:
        """Begin a graceful stop; ``force`` skips the grace period for running jobs."""
        self._stop.set()
        if force:
            self._force.set()

    async def __aenter__(self) -> Self:
        """Run in the background until the block ends; waits until registered."""
        self._runner = asyncio.get_running_loop().create_task(self.run(), name="tether-worker")
        started = asyncio.ensure_future(self.started.wait())
        await asyncio.wait({started, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._runner.done():
            self._runner.result()  # raise what stopped it
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._runner is not None:
            await self._runner

    # -- lifecycle -------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "max_jobs": self.config.max_jobs,
        }

    async def run(self) -> None:
        config = self.config
        tracing.setup("tether-worker")  # spans only if OTEL_TRACES_EXPORTER asks for them
        # The machine endpoints get a pool of their own, so jobs waiting on results
        # through ctx["client"] can never hold up this machine's polls and reports.
        self.session = session = HttpSession(
            config.tether_url,
            max_connections=config.max_jobs + 8,
            api_key=config.api_key,
            key_kind="machine",
        )
        self.transport = transport = MachineTransport(session, self.machine_id)
        # Jobs' own client calls carry the worker's key (a machine key cannot submit:
        # give such a worker a key of its own role, see docs/security.md).
        client = AsyncClient(config.tether_url, api_key=session.api_key)
        self.ctx["client"] = client
        level = config.capture_level
        logs = LogShipper(transport, max_lines=config.log_buffer) if level is not None else None
        self.logs = logs
        self.results = results = ResultBatcher(transport, logs=logs)
        self.executor = executor = Executor(
            self.registry,
            max_jobs=config.max_jobs,
            report=results.add,
            base_ctx=self.ctx,
            on_job_start=config.on_job_start,
            on_job_end=config.on_job_end,
            logs=logs,
        )
        self.heartbeat = heartbeat = Heartbeat(
            transport,
            self.registry,
            executor,
            results,
            max_jobs=config.max_jobs,
            meta=self._meta(),
        )
        self.poller = poller = Poller(
            transport, executor, self.registry.names, wait=config.poll_wait
        )
        tasks: list[asyncio.Task[None]] = []
        capture = contextlib.ExitStack()
        if logs is not None and level is not None:
            capture.enter_context(capturing(level))
            logs.start()
        try:
            if config.on_startup is not None:
                await config.on_startup(self.ctx)
            if not await self._until_stopped(
                retrying(heartbeat.beat, what="registering with the API")
            ):
                return
            if config.cron_jobs and not await self._until_stopped(
                retrying(
                    lambda: register_cron_jobs(transport, config.cron_jobs, config.timezone),
                    what="registering cron jobs",
                )
            ):
                return
            results.start()
            tasks = [
                asyncio.create_task(heartbeat.run(), name="tether-heartbeat"),
                asyncio.create_task(poller.run(), name="tether-poller"),
            ]
            log.info(
                "worker %s serving %s at %s (max_jobs=%d)",
                self.machine_id,
                ", ".join(self.registry.names),
                config.tether_url,
                config.max_jobs,
            )
            self.started.set()
            stop = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait({stop, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            for task in done - {stop}:
                # A loop never ends on its own: if one did, it crashed. Say why, stop.
                log.error("worker loop %s ended: %r", task.get_name(), task.exception())
            await self._shutdown(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await results.close()
            if logs is not None:
                await logs.close()
            capture.close()
            try:
                if config.on_shutdown is not None:
                    await config.on_shutdown(self.ctx)
            finally:
                await client.aclose()
                await session.aclose()
                self.threads.shutdown(wait=False, cancel_futures=True)
                self.stopped.set()
                log.info("worker %s stopped", self.machine_id)

    async def _until_stopped(self, coro: Any) -> bool:
        """Await ``coro`` unless ``stop()`` comes first; returns whether it finished."""
        work = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if work.done():
            work.result()
            return True
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return False

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        assert self.executor is not None and self.results is not None
        heartbeat_task, poll_task = tasks
        poll_task.cancel()
        await asyncio.gather(poll_task, return_exceptions=True)
        executor = self.executor
        if executor.running and not self._force.is_set():
            log.info(
                "stopping: %d jobs running, waiting up to %gs",
                len(executor.running),
                self.config.shutdown_grace,
            )
            idle = asyncio.ensure_future(executor.wait_idle(self.config.shutdown_grace))
            force = asyncio.ensure_future(self._force.wait())
            await asyncio.wait({idle, force}, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            force.cancel()
        if executor.running:
            log.info("releasing %d unfinished jobs", len(executor.running))
            await executor.stop_all(Stop.SHUTDOWN)
        # Kept runs unwind here (recording nothing); they resume elsewhere from history.
        await self.run_cache.close()
        if not await self.results.flush(FLUSH_TIMEOUT):
            log.warning("could not deliver every result within %gs", FLUSH_TIMEOUT)
        if self.logs is not None and not await self.logs.flush(LOGS_FLUSH_TIMEOUT):
            log.warning(
                "could not ship %d captured log lines within %gs",
                self.logs.held,
                LOGS_FLUSH_TIMEOUT,
            )
        heartbeat_task.cancel()
        # No heartbeat may land after the goodbye (it would register the machine again).
        await asyncio.gather(heartbeat_task, return_exceptions=True)
        await self._deregister()

    async def _deregister(self) -> None:
        assert self.transport is not None
        try:
            released = await asyncio.wait_for(self.transport.deregister(), DEREGISTER_TIMEOUT)
        except (TetherError, TimeoutError) as exc:
            log.warning(
                "could not deregister (%s): the orchestrator will declare machine %s dead "
                "once its heartbeats are overdue",
                getattr(exc, "message", None) or type(exc).__name__,
                self.machine_id,
            )
            return
        if released:
            log.warning("deregistered; the API released %d jobs still held", len(released))

    # -- introspection ---------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters for benchmarks and debugging."""
        return {
            "running": len(self.executor.running) if self.executor else 0,
            "polls": self.poller.polls if self.poller else 0,
            "received": self.poller.received if self.poller else 0,
            "accepted": self.results.accepted if self.results else 0,
            "rejected": self.results.rejected if self.results else 0,
            "result_requests": self.results.requests if self.results else 0,
            "heartbeats": self.heartbeat.beats if self.heartbeat else 0,
            "log_lines_shipped": self.logs.shipped if self.logs else 0,
            "log_lines_dropped": self.logs.dropped if self.logs else 0,
            "log_requests": self.logs.requests if self.logs else 0,
        }
