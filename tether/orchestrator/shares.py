"""Orchestrator replicas divide the partitions: each owns a share by lease.

Every replica says it is alive in one zset (``orchestrator_alive``) and learns how many
are; with N alive and P partitions its share is ceil(P/N). Every third of a lease it
keeps the leases it holds (``partition_lease``: SET NX PX on ``{t:p}:owner``), gives up
those beyond its share (so a replica that just joined can take them at once) and takes
free ones up to its share, preferring its own slice of the partitions so replicas rarely
reach for the same. A replica killed with kill -9 stops renewing: its leases expire
within one lease, and the others (who see it gone from the zset after one lease as well,
and so grow their shares) take its partitions on their next renewal, a third of a lease
later: within two lease periods.

Ownership divides the work, it does not guard it: every pass's scripts check the state
they move from, so a replica that still believes it owns a partition (paused past its
lease) while another took it over only makes some of the same calls twice, to no effect.

Cost per replica: two scripts and one pipelined GET per partition every third of a lease
(at the default 2 s lease, ~1.5 round trips a second), nothing per job.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass, field

from tether.queue.engine import QueueEngine

log = logging.getLogger("tether.orchestrator")

DEFAULT_LEASE_MS = 2000


def replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Shares:
    engine: QueueEngine
    lease_ms: int = DEFAULT_LEASE_MS
    replica: str = field(default_factory=replica_id)
    owned: list[int] = field(default_factory=list)
    alive: list[str] = field(default_factory=list)
    _renewed: float = -math.inf  # monotonic time of the last renewal's start

    async def current(self) -> list[int]:
        """The partitions this replica owns, renewed if a third of a lease has passed."""
        if time.monotonic() - self._renewed >= self.lease_ms / 3000:
            await self.renew()
        return self.owned

    async def renew(self) -> list[int]:
        started = time.monotonic()
        engine = self.engine
        partitions = engine.keys.partitions
        alive = await engine.orchestrator_alive(self.replica, self.lease_ms)
        share = math.ceil(partitions / max(1, len(alive)))
        owners = await engine.partition_owners()
        # This replica's slice first: replica i of N prefers partitions from i * share on.
        start = (alive.index(self.replica) if self.replica in alive else 0) * share
        order = [(start + k) % partitions for k in range(partitions)]
        mine = [p for p in order if owners[p] == self.replica]
        modes = {p: "keep" for p in mine[:share]}
        modes.update({p: "drop" for p in mine[share:]})
        free = [p for p in order if owners[p] is None]
        modes.update({p: "take" for p in free[: max(0, share - len(mine))]})
        held = await engine.partition_lease(self.replica, self.lease_ms, modes)
        owned = sorted(p for p, ok in held.items() if ok)
        if owned != self.owned or len(alive) != len(self.alive):
            log.info(
                "orchestrator %s owns partitions %s (%d replicas alive, share %d of %d)",
                self.replica,
                owned,
                len(alive),
                share,
                partitions,
            )
        self.owned, self.alive, self._renewed = owned, alive, started
        return owned

    async def leave(self) -> None:
        """Give up every lease and the membership: the others take over at once."""
        await self.engine.partition_lease(
            self.replica, self.lease_ms, {p: "drop" for p in self.owned}
        )
        await self.engine.orchestrator_alive(self.replica, self.lease_ms, leaving=True)
        self.owned = []
