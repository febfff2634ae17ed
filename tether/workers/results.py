"""Batches job results into as few requests as possible without waiting for a batch.

A result is sent as soon as a sender is free, so an idle worker reports each job at once
(lowest latency); while a request is in flight, the results that finish meanwhile pile up
and leave together in the next one (highest throughput). No timer, no batch size to
reach. Two senders work at once, so a slow request does not hold up the next batch.

A request that fails because the API is unreachable is retried with backoff, never
dropped: the results stay listed as held in heartbeats, so their leases stay alive. A
batch the API refuses as a whole (too large, invalid) is split until the offending item
is found; that one is replaced by a failure saying why, so the job does not hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from tether.errors import TetherError
from tether.protocol import MAX_BATCH
from tether.workers.executor import ResultItem
from tether.workers.logs import LogShipper
from tether.workers.transport import MachineTransport, retrying

log = logging.getLogger("tether.worker")

MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under the API's default 16 MiB body limit


class ResultBatcher:
    def __init__(
        self,
        transport: MachineTransport,
        *,
        senders: int = 2,
        max_batch: int = MAX_BATCH,
        max_bytes: int = MAX_BATCH_BYTES,
        logs: LogShipper | None = None,
    ) -> None:
        self.transport = transport
        # Captured log lines of the jobs in a batch ride it (tether/workers/logs.py).
        self.logs = logs
        self.senders = senders
        self.max_batch = max_batch
        self.max_bytes = max_bytes
        self._pending: dict[str, tuple[ResultItem, int]] = {}
        self._sending: set[str] = set()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.accepted = 0
        self.rejected = 0
        self.requests = 0

    # -- called by the executor and the heartbeat ------------------------------------

    def add(self, item: ResultItem, size: int = 0) -> None:
        self._pending[item["id"]] = (item, size)
        self._settled.clear()
        self._wake.set()

    def drop(self, job_id: str) -> bool:
        """Forget an unsent result (its lease is lost); returns whether there was one."""
        return self._pending.pop(job_id, None) is not None

    def held(self) -> list[str]:
        """Ids of jobs whose results are not yet acknowledged: still leased to us."""
        return [*self._pending, *self._sending]

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._sender(), name=f"results-{i}") for i in range(self.senders)
        ]

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every result so far is acknowledged; False if time ran out."""
        try:
            async with asyncio.timeout(timeout):
                await self._settled.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pending or self._sending:
            log.warning(
                "%d results were not delivered; their jobs run again once their leases end",
                len(self._pending) + len(self._sending),
            )

    # -- sending ---------------------------------------------------------------------

    def _take(self) -> list[ResultItem]:
        batch: list[ResultItem] = []
        total = 0
        for item, size in self._pending.values():
            if batch and (len(batch) >= self.max_batch or total + size > self.max_bytes):
                break
            batch.append(item)
            total += size
        for item in batch:
            del self._pending[item["id"]]
            self._sending.add(item["id"])
        return batch

    async def _sender(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            try:
                await self._deliver_with_logs(batch)
            finally:
                self._sending.difference_update(item["id"] for item in batch)
                if not self._pending and not self._sending:
                    self._settled.set()

    async def _deliver_with_logs(self, batch: list[ResultItem]) -> None:
        logs = self.logs
        if logs is None or not (logs.pending or logs.held):
            await self._deliver(batch)
            return
        ids = [item["id"] for item in batch]
        await logs.after_in_flight(ids)  # a job's earlier lines are stored first
        lines, count = logs.take(ids)
        if not lines:
            await self._deliver(batch)
            return
        logs.sending(lines)
        try:
            self.requests += 1
            verdicts = await retrying(
                lambda: self.transport.results(batch, lines), what="reporting results"
            )
        except TetherError as exc:  # refused for good: without the lines, then as usual
            log.warning("results with %d log lines refused (%s); lines dropped", count, exc)
            logs.sent(lines)
            logs.done(lines, count, None)
            await self._deliver(batch)
            return
        logs.sent(lines)
        logs.done(lines, count, [{"accepted": True}] * len(lines))
        self._tally(verdicts)

    async def _deliver(self, batch: list[ResultItem]) -> None:
        try:
            self.requests += 1
            verdicts = await retrying(
                lambda: self.transport.results(batch), what="reporting results"
            )
        except TetherError as exc:  # refused for good (4xx): find the culprit
            if len(batch) > 1:
                half = len(batch) // 2
                await self._deliver(batch[:half])
                await self._deliver(batch[half:])
                return
            await self._replace(batch[0], exc)
            return
        self._tally(verdicts)

    async def _replace(self, item: ResultItem, exc: TetherError) -> None:
        if item.get("status") == "released":
            log.error("job %s: release refused (%s); its lease will expire", item["id"], exc)
            return
        log.error("job %s: result refused by the API (%s); failing the job", item["id"], exc)
        error: dict[str, Any] = {
            "type": type(exc).__name__,
            "message": f"the API refused the result: {exc.message}",
        }
        failure = {
            "id": item["id"],
            "token": item["token"],
            "status": "failed",
            "error": error,
            "retryable": False,
        }
        try:
            self.requests += 1
            verdicts = await retrying(
                lambda: self.transport.results([failure]), what="reporting results"
            )
        except TetherError as again:
            log.error("job %s: failure refused too (%s); its lease will expire", item["id"], again)
            return
        self._tally(verdicts)

    def _tally(self, verdicts: Sequence[dict[str, Any]]) -> None:
        for v in verdicts:
            if v["accepted"]:
                self.accepted += 1
            else:
                # Normal after a lost lease: another machine's result is the one kept.
                self.rejected += 1
                log.info(
                    "job %s: result rejected (%s; job is %s)", v["id"], v.get("reason"), v["status"]
                )
