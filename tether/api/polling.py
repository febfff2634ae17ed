"""The long poll of a machine, and the wait of a client for a job to finish.

A poll claims at once; with nothing to claim it waits, holding no Redis connection, for
a notification about one of its functions (or its deadline), then claims again. The
waiter is registered BEFORE the first claim: a job made ready between that claim and
the wait would otherwise wake nobody.

When the process shuts down, every wait ends at once (polls answer ``[]``) so workers
go on polling another replica instead of being cut off mid-wait.

A client that hangs up is noticed (the ASGI ``http.disconnect`` message), so its poll
stops waiting instead of leasing jobs to a socket nobody reads; jobs claimed in the
instant the client left are handed back at once (``release``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from litestar.types import Receive

from tether.api.notify import FunctionWaiter, Notifier
from tether.errors import TetherError
from tether.protocol import ACTIVATION_PREFIX, TERMINAL
from tether.queue.engine import QueueEngine
from tether.queue.keys import sticky_function
from tether.queue.records import ClaimedJob, JobRecord

R = TypeVar("R")

log = logging.getLogger("tether.api.polling")


async def _watch_disconnect(receive: Receive, waiter: FunctionWaiter) -> None:
    # The body has been read, so the next ASGI message is the client leaving (or the
    # server finishing the response, which cancels this task first).
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            waiter.client_gone()
            return


async def release_jobs(engine: QueueEngine, jobs: Sequence[ClaimedJob]) -> None:
    """Hand back jobs leased for a poll that will not deliver them (one round trip:
    they are all leased to the one machine of the poll)."""
    if not jobs:
        return
    try:
        verdicts = await engine.release_many(
            [(job.id, job.token) for job in jobs], machine=jobs[0].machine
        )
    except TetherError as exc:  # the lease reaper will get them instead
        log.warning("could not hand back %d jobs of a vanished poll: %s", len(jobs), exc)
        return
    for v in verdicts:
        if not v.accepted:
            log.warning("could not hand back job %s of a vanished poll: %s", v.job_id, v.reason)


async def poll_jobs(
    engine: QueueEngine,
    notifier: Notifier,
    machine: str,
    functions: Sequence[str],
    max_jobs: int,
    wait: float,
    receive: Receive | None = None,
) -> list[ClaimedJob]:
    """Up to ``max_jobs`` jobs leased to ``machine``, waiting up to ``wait`` seconds for
    the first; ``[]`` when the wait elapses (or the client left). While it waits, a
    request submitting a job may claim for it and hand it the jobs (``FunctionWaiter``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    watcher: asyncio.Task[None] | None = None
    waited = list(functions)
    if any(fn.startswith(ACTIVATION_PREFIX) for fn in functions):
        # Its sticky queue (runs it keeps in memory) wakes it too; claim reads it.
        waited.append(sticky_function(machine))
    with notifier.function_waiter(waited, machine, max_jobs) as waiter:
        try:
            while True:
                waiter.arm()
                jobs: list[ClaimedJob] = []
                if waiter.handed is None:
                    async with notifier.claim_slots:
                        jobs = await engine.claim(machine, functions, max_jobs, require_live=True)
                # Jobs handed over while this poll claimed come on top: never more than asked.
                jobs = [*waiter.take(), *jobs]
                if waiter.disconnected:
                    await release_jobs(engine, jobs)
                    return []
                if jobs:
                    await release_jobs(engine, jobs[max_jobs:])
                    return jobs[:max_jobs]
                remaining = deadline - loop.time()
                if remaining <= 0 or notifier.closing:
                    return []
                if watcher is None and receive is not None:
                    watcher = asyncio.create_task(_watch_disconnect(receive, waiter))
                await waiter.wait(remaining)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            # From here on nothing more is handed to it; what came too late goes back.
            waiter.closed = True
            await release_jobs(engine, waiter.take())


async def wait_until_finished(
    notifier: Notifier,
    key: str,
    read: Callable[[], Awaitable[R]],
    finished: Callable[[R], bool],
    wait: float,
    *,
    first: Callable[[], Awaitable[R]] | None = None,
    run: bool = False,
) -> R:
    """``read()`` as soon as ``finished`` holds for it, or as it is when ``wait`` elapses.
    ``key`` is the job id (or with ``run``, the run id) whose finish is published.
    ``first``, if given, replaces the first read: a call that answers with the record,
    such as the enqueue that creates it."""
    if wait <= 0:
        return await (first or read)()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    # The waiter is registered before the first read (in-process, free), so that one
    # read serves both "already finished?" and "finished since we started waiting?".
    with notifier.run_waiter(key) if run else notifier.job_waiter(key) as waiter:
        while True:
            waiter.event.clear()
            record = await (first or read)()
            first = None
            remaining = deadline - loop.time()
            if finished(record) or remaining <= 0 or notifier.closing:
                return record
            await waiter.wait(remaining)


async def wait_for_job(
    engine: QueueEngine, notifier: Notifier, job_id: str, wait: float
) -> JobRecord:
    """The job's record as soon as it is terminal, or as it is when ``wait`` elapses."""
    return await wait_until_finished(
        notifier, job_id, lambda: engine.get_job(job_id), lambda r: r.status in TERMINAL, wait
    )
