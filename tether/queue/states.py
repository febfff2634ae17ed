"""Job states and the transitions between them.

The table ``TRANSITIONS`` is the contract: each Lua script moves a job only along these
edges (tests check the scripts against it, and docs/architecture.md draws it).
"""

from __future__ import annotations

from tether.protocol import TERMINAL, JobStatus

__all__ = ["TERMINAL", "TRANSITIONS", "JobStatus"]


# (from, to) -> the scripts that make that move.
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
