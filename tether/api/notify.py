"""Wake long polls when Redis says something changed, without a connection per waiter.

One API process holds ONE pub/sub connection (``PSUBSCRIBE`` on every partition's notify
channel). The Lua scripts publish ``q:<function>`` when a job becomes ready
(``q:<function> <n>`` when n do at once) and ``j:<job id>`` when a job finishes
(``j:<id> <id> ...`` for a batch reported together), ``r:<run id>`` when a run
finishes, and ``s:<run id> <status>`` when a run's status changes (read only by the
event stream, ``events.py``); the kinds are defined in tether/queue/keys.py. Waiting requests
are plain asyncio objects in this process: a message wakes them, they run one Redis
command on the shared pool, and go back to waiting if there was nothing for them. So a
thousand waiting polls cost one connection and no Redis work until something happens.

Pub/sub is fire-and-forget, so two safety nets cover lost messages:
- after every (re)subscription, every waiter re-checks (messages published while the
  connection was down are gone);
- every ``recheck_interval`` one pipeline asks for the depth of the queues that polls
  wait on and the status of the jobs that clients wait on, and wakes whoever has cause.

A ``q:`` message wakes ONE waiter of that function per job it announces, not all of
them: a thousand idle workers do not stampede Redis for each job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

from redis import exceptions as redis_exc

from tether.protocol import RUN_TERMINAL
from tether.queue.keys import JOB_FINISHED, LOGS, READY, RUN_FINISHED, Keys
from tether.queue.records import ClaimedJob
from tether.queue.redis_py import Client, read_reply, subscription_connection
from tether.queue.states import TERMINAL

log = logging.getLogger("tether.api.notify")

_TERMINAL = frozenset(s.value for s in TERMINAL)
_RUN_TERMINAL = frozenset(s.value for s in RUN_TERMINAL)
_BACKOFF_MIN = 0.05
_BACKOFF_MAX = 2.0


class FunctionWaiter:
    """One long poll waiting for jobs of some functions.

    A poll of ``machine`` (for up to ``max_jobs``) can also be handed jobs directly: a
    request that submits a job while the poll waits reserves it (``Notifier.take_idle``),
    claims for it in the same Redis round trip as the enqueue, and gives it the jobs
    (``hand``); a poll that has ended by then gets nothing, and the jobs go back.
    """

    __slots__ = (
        "closed",
        "disconnected",
        "event",
        "functions",
        "handed",
        "machine",
        "max_jobs",
        "parked",
        "reserved",
        "woken_for",
    )

    def __init__(self, functions: Sequence[str], machine: str = "", max_jobs: int = 0) -> None:
        self.event = asyncio.Event()
        self.functions = tuple(dict.fromkeys(functions))
        self.machine = machine  # "" for a waiter that no machine's poll stands behind
        self.max_jobs = max_jobs
        self.woken_for: str | None = None  # the function whose message woke it
        self.disconnected = False  # its HTTP client went away
        self.reserved = False  # a submitting request is claiming jobs for it
        self.handed: list[ClaimedJob] | None = None  # jobs claimed for it by that request
        self.closed = False  # the poll has answered: it takes nothing more
        self.parked = False  # inside wait(): not claiming for itself right now

    def take(self) -> list[ClaimedJob]:
        """The jobs handed to it so far (and forget them)."""
        jobs, self.handed = self.handed or [], None
        return jobs

    def hand(self, jobs: list[ClaimedJob]) -> bool:
        """Give the poll jobs claimed for it; False if it can no longer take them (it
        answered already, or its client left): the caller hands them back."""
        self.reserved = False
        if self.closed or self.disconnected:
            return False
        if jobs:
            self.handed = [*(self.handed or ()), *jobs]
            self.event.set()
        return True

    def arm(self) -> None:
        """Forget past wakes: call right before checking Redis, so a message that
        arrives during the check is not lost (it sets the event again)."""
        self.event.clear()
        self.woken_for = None

    async def wait(self, timeout: float) -> None:
        """Until woken, the client disconnects, or ``timeout`` seconds pass."""
        if self.event.is_set():
            return
        self.parked = True
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.event.wait()
        finally:
            self.parked = False

    def client_gone(self) -> None:
        self.disconnected = True
        self.event.set()


class JobWaiter:
    """One request waiting for a job to finish."""

    __slots__ = ("event", "job_id")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        if self.event.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.event.wait()


class Notifier:
    """The process's pub/sub listener and the registry of waiting requests."""

    def __init__(
        self,
        subscriber: Client,
        redis: Client,
        keys: Keys,
        *,
        recheck_interval: float = 1.0,
        claim_concurrency: int = 16,
        ping_after: float = 10.0,
    ) -> None:
        # ``subscriber`` is a client of its own (its one connection is held by the
        # subscription); ``redis`` is the shared pool, used by the periodic re-check.
        self._subscriber = subscriber
        self._redis = redis
        self._keys = keys
        self._recheck_interval = recheck_interval
        # Seconds of silence on the subscription before a PING, and after an unanswered
        # PING before the connection is given up as dead.
        self._ping_after = ping_after
        # function -> its waiters, in wake order (a dict is an ordered set).
        self._by_function: dict[str, dict[FunctionWaiter, None]] = {}
        self._by_job: dict[str, list[JobWaiter]] = {}
        self._by_run: dict[str, list[JobWaiter]] = {}  # GET /v1/runs/{id}?wait=
        # GET /v1/jobs|runs/{id}/logs followers, by topic: "j/<job id>" or "r/<run id>".
        # Woken by new lines (``l:<topic>``) and by the job's or run's end.
        self._by_logs: dict[str, list[JobWaiter]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Long polls claim through this: a burst of wake-ups (1,000 jobs for 1,000
        # waiting polls) queues here, leaving the rest of the pool to other requests
        # instead of timing out on it.
        self.claim_slots = asyncio.Semaphore(claim_concurrency)
        self._connected = False
        self._closing = False  # the process is shutting down: waits end now
        # Namespaces: one Notifier per namespace, all served by the root's subscription
        # (``for_namespace``); messages go to the namespace their channel names.
        self.namespace = keys.namespace
        self._root: Notifier | None = None
        self._children: dict[str, Notifier] = {}
        self._by_channel: dict[str, Notifier] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.subscriptions = 0  # how many times the subscription was (re)established
        self.waiting_polls = 0
        self.waiting_jobs = 0
        self.messages = 0
        # Called with every message (the event stream, events.py), and on close_waits.
        self.listeners: list[Callable[[str], None]] = []
        self.closers: list[Callable[[], None]] = []

    # -- namespaces ------------------------------------------------------------------

    def for_namespace(self, namespace: str, keys: Keys) -> Notifier:
        """The notifier of another namespace: its own waiters, this one's subscription,
        re-check loop and claim slots (so the bounds stay per process)."""
        root = self._root or self
        if namespace == root.namespace:
            return root
        child = root._children.get(namespace)
        if child is None:
            child = Notifier(
                root._subscriber,
                root._redis,
                keys,
                recheck_interval=root._recheck_interval,
                ping_after=root._ping_after,
            )
            child.claim_slots = root.claim_slots
            child._root = root
            root._children[namespace] = child
        return child

    @property
    def connected(self) -> bool:
        return (self._root or self)._connected

    @property
    def closing(self) -> bool:
        return (self._root or self)._closing

    def _family(self) -> list[Notifier]:
        return [self, *self._children.values()]

    def _target(self, channel: str) -> Notifier | None:
        """The notifier whose waiters a message on ``channel`` is for."""
        target = self._by_channel.get(channel)
        if target is None:
            ns = self._keys.namespace_of_channel(channel)
            target = self if ns == self.namespace else self._children.get(ns or "")
            if target is not None:
                self._by_channel[channel] = target
        return target

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="tether-notify-listen"),
                asyncio.create_task(self._recheck_loop(), name="tether-notify-recheck"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._connected = False
        for notifier in self._family():
            notifier.wake_everyone()  # nobody should sleep through a shutdown

    def close_waits(self) -> None:
        """End every wait now, and every wait that starts from now on: the process is
        shutting down, and a worker had better poll another replica than be cut off."""
        root = self._root or self
        root._closing = True
        for notifier in root._family():
            notifier.wake_everyone()
            for close in notifier.closers:  # event streams (events.py) end too
                close()

    def close_waits_threadsafe(self) -> None:
        """``close_waits`` from a signal handler or another thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close_waits)

    async def wait_connected(self, timeout: float) -> bool:
        """True once the subscription is live (tests and readiness checks use it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.connected and loop.time() < deadline:
            await asyncio.sleep(0.005)
        return self.connected

    # -- waiters ---------------------------------------------------------------------

    @contextlib.contextmanager
    def function_waiter(
        self, functions: Sequence[str], machine: str = "", max_jobs: int = 0
    ) -> Iterator[FunctionWaiter]:
        """Register a long poll for ``functions`` for the duration of the block; with
        ``machine``, jobs can be handed to it directly (``take_idle``)."""
        waiter = FunctionWaiter(functions, machine, max_jobs)
        for fn in waiter.functions:
            self._by_function.setdefault(fn, {})[waiter] = None
        self.waiting_polls += 1
        try:
            yield waiter
        finally:
            waiter.closed = True
            self.waiting_polls -= 1
            for fn in waiter.functions:
                waiters = self._by_function.get(fn)
                if waiters is not None:
                    waiters.pop(waiter, None)
                    if not waiters:
                        del self._by_function[fn]
            # Woken but gone before it looked (it had its jobs, or its client left):
            # the message stood for a ready job, so hand it to someone who will look.
            if waiter.woken_for is not None and waiter.event.is_set():
                self.wake_function(waiter.woken_for)

    @contextlib.contextmanager
    def job_waiter(self, job_id: str) -> Iterator[JobWaiter]:
        """Register a request waiting for ``job_id`` to finish."""
        waiter = JobWaiter(job_id)
        self._by_job.setdefault(job_id, []).append(waiter)
        self.waiting_jobs += 1
        try:
            yield waiter
        finally:
            self.waiting_jobs -= 1
            waiters = self._by_job.get(job_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
                if not waiters:
                    del self._by_job[job_id]

    @contextlib.contextmanager
    def run_waiter(self, run_id: str) -> Iterator[JobWaiter]:
        """Register a request waiting for run ``run_id`` to finish."""
        waiter = JobWaiter(run_id)
        self._by_run.setdefault(run_id, []).append(waiter)
        try:
            yield waiter
        finally:
            waiters = self._by_run.get(run_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
                if not waiters:
                    del self._by_run[run_id]

    @contextlib.contextmanager
    def logs_waiter(self, topic: str) -> Iterator[JobWaiter]:
        """Register a request following the log lines of ``topic`` ("j/<job id>" or
        "r/<run id>"): woken when lines arrive or the job or run ends."""
        waiter = JobWaiter(topic)
        self._by_logs.setdefault(topic, []).append(waiter)
        try:
            yield waiter
        finally:
            waiters = self._by_logs.get(topic)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
                if not waiters:
                    del self._by_logs[topic]

    def wake_logs(self, topic: str) -> None:
        for waiter in self._by_logs.get(topic, ()):
            waiter.event.set()

    @property
    def parked_polls(self) -> int:
        """Polls sitting in their wait (not claiming for themselves)."""
        waiters = {w for ws in self._by_function.values() for w in ws}
        return sum(1 for w in waiters if w.parked)

    def take_idle(self, function: str) -> FunctionWaiter | None:
        """Reserve a poll of ``function`` parked in its wait that can be handed jobs
        (it names its machine, is not woken and not reserved already); it moves to the
        back of the line. The caller must ``hand`` it something, if only ``[]``.
        A poll busy claiming for itself is never taken: under load polls are mostly
        busy, and jobs claimed for one that then answers with its own would have to be
        handed back."""
        for waiter in self._by_function.get(function, ()):
            if (
                waiter.machine
                and waiter.parked
                and not (waiter.event.is_set() or waiter.reserved or waiter.disconnected)
            ):
                waiter.reserved = True
                waiters = self._by_function[function]
                del waiters[waiter]
                waiters[waiter] = None
                return waiter
        return None

    def wake_function(self, function: str) -> bool:
        """Wake one waiter of ``function`` that is not already awake (nor being handed
        jobs); it moves to the back of the line, so wakes go round. False if nobody
        could be woken."""
        waiters = self._by_function.get(function)
        if not waiters:
            return False
        for waiter in waiters:
            if not (waiter.event.is_set() or waiter.reserved):
                waiter.woken_for = function
                waiter.event.set()
                del waiters[waiter]
                waiters[waiter] = None
                return True
        return False  # all awake already: each will look at the queue anyway

    def wake_job(self, job_id: str) -> None:
        for waiter in self._by_job.get(job_id, ()):
            waiter.event.set()

    def wake_run(self, run_id: str) -> None:
        for waiter in self._by_run.get(run_id, ()):
            waiter.event.set()

    def wake_everyone(self) -> None:
        for waiters in self._by_function.values():
            for waiter in waiters:
                waiter.event.set()
        for job_waiters in (
            *self._by_job.values(),
            *self._by_run.values(),
            *self._by_logs.values(),
        ):
            for job_waiter in job_waiters:
                job_waiter.event.set()

    def dispatch(self, data: str) -> None:
        """Act on one published message: ``q:<function>`` (one job ready), ``q:<function>
        <n>`` (n jobs ready at once), or ``j:<job id> <job id> ...`` (jobs that finished
        together). Names and ids never contain spaces."""
        self.messages += 1
        for listener in self.listeners:
            listener(data)
        kind, _, name = data.partition(":")
        if kind == READY:
            function, _, count = name.partition(" ")
            for _ in range(int(count) if count.isdigit() else 1):
                if not self.wake_function(function):
                    break
        elif kind == JOB_FINISHED:
            for job_id in name.split(" "):
                self.wake_job(job_id)
                if self._by_logs:
                    self.wake_logs("j/" + job_id)
        elif kind == RUN_FINISHED:
            self.wake_run(name)
            self.wake_logs("r/" + name)
        elif kind == LOGS:
            for topic in name.split(" "):
                self.wake_logs(topic)

    # -- background tasks --------------------------------------------------------------

    async def _listen(self) -> None:
        """Hold the subscription; on any failure, reconnect with capped backoff.

        It reads the connection directly rather than through redis-py's ``PubSub``: at
        thousands of messages a second that is a quarter of the CPU per message. A quiet
        subscription is PINGed after ``ping_after`` seconds and dropped if even that goes
        unanswered as long again, so a connection that died silently (no RST) is
        replaced instead of waited on.
        """
        backoff = _BACKOFF_MIN
        failures = 0
        while True:
            conn = subscription_connection(self._subscriber)
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                await conn.send_command("PSUBSCRIBE", self._keys.channel_pattern)
                # Wait for the confirmation: from here on, nothing published is missed.
                while True:
                    reply = await read_reply(conn, self._ping_after)
                    if reply is None:
                        raise redis_exc.TimeoutError("no PSUBSCRIBE confirmation")
                    if reply[0] == "psubscribe":
                        break
                self._connected = True
                self.subscriptions += 1
                backoff, failures = _BACKOFF_MIN, 0
                # Whatever was published while we were not subscribed is lost: re-check.
                for notifier in self._family():
                    notifier.wake_everyone()
                pinged = False
                while True:
                    reply = await read_reply(conn, self._ping_after)
                    if reply is None:
                        if pinged:
                            raise redis_exc.TimeoutError(
                                f"subscription silent for {2 * self._ping_after:g} s"
                            )
                        await conn.send_command("PING")
                        pinged = True
                        continue
                    pinged = False
                    if reply[0] == "pmessage":
                        target = self._target(reply[2])
                        if target is not None:
                            target.dispatch(reply[3])
            except asyncio.CancelledError:
                raise
            except (redis_exc.RedisError, OSError) as exc:
                if self._connected or failures == 0:
                    log.warning("notification subscription down (%s); retrying", exc)
                failures += 1
            finally:
                self._connected = False
                with contextlib.suppress(Exception):
                    await conn.disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_interval)
            try:
                for notifier in self._family():
                    await notifier.recheck()
            except asyncio.CancelledError:
                raise
            except (redis_exc.RedisError, OSError) as exc:
                log.debug("fallback re-check failed: %s", exc)

    async def recheck(self) -> None:
        """The fallback: one pipeline for every function and job someone waits on."""
        functions = list(self._by_function)
        jobs = list(self._by_job)
        runs = list(self._by_run)
        # Log followers just look again (one XRANGE each): a lost message costs a
        # follower at most one re-check interval.
        for topic in list(self._by_logs):
            self.wake_logs(topic)
        if not functions and not jobs and not runs:
            return
        partitions = self._keys.all_partitions()
        async with self._redis.pipeline(transaction=False) as pipe:
            for fn in functions:
                for pk in partitions:
                    pipe.xlen(pk.ready(fn))
                    # Jobs of other priorities wait on streams of their own (plv: lists them).
                    pipe.exists(pk.levels(fn))
            for job_id in jobs:
                pipe.hget(self._keys.for_id(job_id).job(job_id), "status")
            for run_id in runs:
                pipe.hget(self._keys.for_id(run_id).run(run_id), "status")
            replies = await pipe.execute()
        n = 2 * len(partitions)
        for i, fn in enumerate(functions):
            depth = sum(int(d) for d in replies[i * n : (i + 1) * n])
            for _ in range(depth):
                if not self.wake_function(fn):
                    break
        statuses = replies[len(functions) * n :]
        for job_id, status in zip(jobs, statuses[: len(jobs)], strict=True):
            # Missing (expired) counts too: the waiter will answer 404.
            if status is None or status in _TERMINAL:
                self.wake_job(job_id)
        for run_id, status in zip(runs, statuses[len(jobs) :], strict=True):
            if status is None or status in _RUN_TERMINAL:
                self.wake_run(run_id)
