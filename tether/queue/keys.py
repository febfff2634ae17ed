"""Every Redis key tether uses, built in one place.

Each key carries a partition hash tag, ``{<prefix>:<partition>}``, and every script
touches the keys of a single partition, so the same code runs on one Redis server and on
Redis Cluster. A run and all of its jobs live in one partition: a child job's id starts
with its run's id and a colon, and partitions are chosen by that first segment.

Scripts build the names of records they discover at run time (a job id read from a
stream) from the partition prefix with the helpers in ``lua/includes/keys.lua``, which
mirror the methods here.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """The keys of one partition."""

    prefix: str  # e.g. "{tether:0}:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def ready(self, function: str) -> str:
        return f"{self.prefix}q:{function}"

    def timeline(self, owner_id: str) -> str:
        return f"{self.prefix}tl:{owner_id}"

    def machine_jobs(self, machine: str) -> str:
        return f"{self.prefix}mjobs:{machine}"

    def cancels(self, machine: str) -> str:
        return f"{self.prefix}cancels:{machine}"

    def machine(self, machine: str) -> str:
        return f"{self.prefix}machine:{machine}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}idem:{key}"

    # -- workflow runs (tether/queue/runs.py); mirrored in lua/includes/run_keys.lua --

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def steps(self, run_id: str) -> str:
        """Hash: step position -> JSON record, in replay order."""
        return f"{self.prefix}steps:{run_id}"

    def approvals(self, run_id: str) -> str:
        """Hash: approval key -> JSON decision (one decision per key)."""
        return f"{self.prefix}approvals:{run_id}"

    def signals(self, run_id: str) -> str:
        """List of signals not yet consumed, oldest first: "<name>\\n<payload JSON>"."""
        return f"{self.prefix}signals:{run_id}"

    def logs(self, run_id: str) -> str:
        """Stream of a run's ctx.log lines, bounded (its timeline is not, while open)."""
        return f"{self.prefix}logs:{run_id}"

    @property
    def runs(self) -> str:
        """Zset of run ids by creation time (ms): the runs index."""
        return f"{self.prefix}runs"

    @property
    def timers(self) -> str:
        """Zset of waiting run ids by the time (ms) they are due to wake."""
        return f"{self.prefix}timers"

    @property
    def run_deadlines(self) -> str:
        """Zset of run ids by their workflow-level deadline (ms)."""
        return f"{self.prefix}run_deadlines"

    @property
    def unversioned(self) -> str:
        """Zset of runs created before any machine served their workflow."""
        return f"{self.prefix}unversioned"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

    @property
    def machines(self) -> str:
        return f"{self.prefix}machines"

    @property
    def plane(self) -> str:
        """Hash: when the control plane could last hear machines (lua/plane_pass.lua)."""
        return f"{self.prefix}plane"

    @property
    def apis(self) -> str:
        """Zset of API replica ids by the last time (ms) each said it was up."""
        return f"{self.prefix}apis"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}jobs"

    @property
    def functions(self) -> str:
        return f"{self.prefix}functions"

    @property
    def channel(self) -> str:
        """Pub/sub channel that wakes waiting requests (messages: see ``READY``)."""
        return f"{self.prefix}notify"


# The messages on a partition's notify channel (published by the Lua scripts, read by
# tether/api/notify.py), "<kind>:<names>", names space-separated (never in an id):
READY = "q"  # q:<function>, or q:<function> <n>: n jobs of the function became ready
JOB_FINISHED = "j"  # j:<job id> <job id> ...: jobs that reached a terminal state
RUN_FINISHED = "r"  # r:<run id>: a workflow run reached a terminal state
RUN_STATUS = "s"  # s:<run id> <status>: a run's status changed (read by GET /v1/events)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for a deployment: a prefix and a number of partitions."""

    prefix: str = "tether"
    partitions: int = 1

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        if any(c in self.prefix for c in "{}"):
            raise ValueError("the key prefix may not contain braces")

    def partition(self, index: int) -> PartitionKeys:
        return _partition_keys(self.prefix, index)

    def partition_of(self, record_id: str) -> int:
        """The partition of a job or run: by the id's first colon-separated segment."""
        if self.partitions == 1:
            return 0
        root = record_id.split(":", 1)[0]
        return zlib.crc32(root.encode()) % self.partitions

    def for_id(self, record_id: str) -> PartitionKeys:
        return self.partition(self.partition_of(record_id))

    def all_partitions(self) -> list[PartitionKeys]:
        return [self.partition(i) for i in range(self.partitions)]

    @property
    def channel_pattern(self) -> str:
        """Matches every partition's notify channel, for one subscription per process."""
        return f"{{{self.prefix}:*}}:notify"


@functools.lru_cache(maxsize=1024)
def _partition_keys(prefix: str, index: int) -> PartitionKeys:
    # Looked up per job on the hot paths: built once per (prefix, partition).
    return PartitionKeys(f"{{{prefix}:{index}}}:")
