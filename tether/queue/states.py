"""Job states and the transitions between them.

The table ``TRANSITIONS`` is the contract: each Lua script moves a job only along these
edges (tests check the scripts against it, and docs/architecture.md draws it).
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # on its function's ready stream, waiting for a machine
    DELAYED = "delayed"  # waiting for its time (a delay or a retry backoff)
    RUNNING = "running"  # leased to a machine, which alone holds its fencing token
    COMPLETED = "completed"  # result committed (terminal)
    FAILED = "failed"  # failed with an error that is not retried (terminal)
    CANCELLED = "cancelled"  # cancelled before or while it ran (terminal)
    DEAD = "dead"  # every attempt failed (terminal)


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD}
)

# (from, to) -> the scripts that make that move. Every move out of RUNNING that a machine
# asks for (complete, fail, release) is guarded by its lease: the job is leased to that
# machine with that token; the orchestrator's (reap, machine_dead) by the lease's time.
TRANSITIONS: dict[tuple[JobStatus | None, JobStatus], frozenset[str]] = {
    (None, JobStatus.QUEUED): frozenset({"enqueue"}),
    (None, JobStatus.DELAYED): frozenset({"enqueue"}),
    (JobStatus.QUEUED, JobStatus.RUNNING): frozenset({"claim"}),
    (JobStatus.QUEUED, JobStatus.CANCELLED): frozenset({"cancel"}),
    (JobStatus.DELAYED, JobStatus.QUEUED): frozenset({"promote"}),
    (JobStatus.DELAYED, JobStatus.CANCELLED): frozenset({"cancel"}),
    (JobStatus.RUNNING, JobStatus.COMPLETED): frozenset({"complete"}),
    (JobStatus.RUNNING, JobStatus.DELAYED): frozenset({"fail", "reap"}),
    (JobStatus.RUNNING, JobStatus.QUEUED): frozenset({"release", "reap", "machine_dead"}),
    (JobStatus.RUNNING, JobStatus.FAILED): frozenset({"fail"}),
    (JobStatus.RUNNING, JobStatus.DEAD): frozenset({"fail", "reap", "machine_dead"}),
    (JobStatus.RUNNING, JobStatus.CANCELLED): frozenset(
        {"fail", "release", "reap", "machine_dead"}
    ),
}
