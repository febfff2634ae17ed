"""Job and run states and the transitions between them.

The tables ``TRANSITIONS`` (jobs) and ``RUN_TRANSITIONS`` (workflow runs) are the
contract: each Lua script moves a job or a run only along these edges (tests drive each
edge through its script; docs/architecture.md and docs/workflows.md draw them). The
statuses themselves live in ``tether.protocol``, shared with workers and clients.
"""

from __future__ import annotations

from tether.protocol import TERMINAL, JobStatus, RunStatus

__all__ = ["RUN_SCRIPTS", "RUN_TRANSITIONS", "TERMINAL", "TRANSITIONS", "JobStatus"]


# The scripts of workflow runs (lua/*_run.lua and the like).
RUN_SCRIPTS = frozenset(
    {
        "start_run",
        "assign_version",
        "begin_activation",
        "continue_run",
        "record_step",
        "complete_run",
        "fail_run",
        "suspend_run",
        "decide_approval",
        "send_signal",
        "cancel_run",
        "retry_run",
        "wake_timers",
        "expire_runs",
    }
)

# (from, to) -> the scripts that make that move. Runs create their jobs (activations
# `<run>:a<n>`, children `<run>:c<pos>`) queued: the run scripts, and the job scripts
# whose run hook queues the next activation when a child ends (complete, fail, cancel,
# reap, machine_dead, release) and the run scripts that end a child run (complete_run,
# fail_run, cancel_run, expire_runs: its parent's next activation). cancel_run and
# expire_runs cancel a run's waiting jobs. Every move out of RUNNING that a machine asks
# for (complete, fail, release) is guarded by its lease: the job is leased to that
# machine with that token; the orchestrator's (reap, machine_dead) by the lease's time.
_WAKES_A_RUN = ("complete", "fail", "cancel", "reap", "machine_dead", "release")
TRANSITIONS: dict[tuple[JobStatus | None, JobStatus], frozenset[str]] = {
    (None, JobStatus.QUEUED): frozenset(
        {
            "enqueue",
            "start_run",
            "assign_version",
            "suspend_run",
            "decide_approval",
            "send_signal",
            "wake_timers",
            "retry_run",
            "continue_run",
            *_WAKES_A_RUN,
            "complete_run",
            "fail_run",
            "cancel_run",
            "expire_runs",
        }
    ),
    (None, JobStatus.DELAYED): frozenset({"enqueue"}),
    # A job whose `expires` is already past is created ended (an absolute time).
    (None, JobStatus.EXPIRED): frozenset({"enqueue"}),
    (JobStatus.QUEUED, JobStatus.RUNNING): frozenset({"claim"}),
    # A job whose concurrency key's rate is spent waits, delayed, until the rate lets it
    # start (claim.lua; docs/queue-features.md).
    (JobStatus.QUEUED, JobStatus.DELAYED): frozenset({"claim"}),
    (JobStatus.QUEUED, JobStatus.CANCELLED): frozenset({"cancel", "cancel_run", "expire_runs"}),
    (JobStatus.DELAYED, JobStatus.QUEUED): frozenset({"promote"}),
    (JobStatus.DELAYED, JobStatus.CANCELLED): frozenset({"cancel", "cancel_run", "expire_runs"}),
    # Never started by its `expires` time: the orchestrator's pass, or the claim that
    # would have leased it (lua/includes/expire_job.lua).
    (JobStatus.QUEUED, JobStatus.EXPIRED): frozenset({"expire", "claim"}),
    (JobStatus.DELAYED, JobStatus.EXPIRED): frozenset({"expire"}),
    (JobStatus.RUNNING, JobStatus.COMPLETED): frozenset({"complete"}),
    (JobStatus.RUNNING, JobStatus.DELAYED): frozenset({"fail", "reap"}),
    (JobStatus.RUNNING, JobStatus.QUEUED): frozenset({"release", "reap", "machine_dead"}),
    (JobStatus.RUNNING, JobStatus.FAILED): frozenset({"fail"}),
    (JobStatus.RUNNING, JobStatus.DEAD): frozenset({"fail", "reap", "machine_dead"}),
    (JobStatus.RUNNING, JobStatus.CANCELLED): frozenset(
        {"fail", "release", "reap", "machine_dead"}
    ),
}


# Run states: (from, to) -> the scripts that make that move (suspend_run creates child
# runs; a child run ending wakes its waiting parent). Besides the run scripts,
# the job scripts move runs through their run hook (includes/run_job_finished.lua): a
# child job ending wakes a run waiting on it (waiting -> queued), and the run's current
# activation ending without a run command (a worker failing it, attempts used up on
# lost machines, a user cancelling it) fails the run. Tests drive every edge through its
# script (tests/queue/test_run_transitions.py); docs/workflows.md draws the table.
_CHILD_ENDS = frozenset({"complete", "fail", "cancel", "reap", "machine_dead", "release"})
# A child run (ctx.child) ending wakes its parent the same way (includes/finish_run.lua).
_CHILD_RUN_ENDS = frozenset({"complete_run", "fail_run", "cancel_run", "expire_runs"})
RUN_TRANSITIONS: dict[tuple[RunStatus | None, RunStatus], frozenset[str]] = {
    (None, RunStatus.QUEUED): frozenset({"start_run", "suspend_run"}),
    (RunStatus.QUEUED, RunStatus.QUEUED): frozenset({"assign_version"}),
    (RunStatus.QUEUED, RunStatus.RUNNING): frozenset({"begin_activation"}),
    (RunStatus.QUEUED, RunStatus.CANCELLED): frozenset({"cancel_run"}),
    (RunStatus.QUEUED, RunStatus.FAILED): frozenset({"expire_runs", "cancel"}),
    (RunStatus.RUNNING, RunStatus.RUNNING): frozenset({"record_step"}),
    (RunStatus.RUNNING, RunStatus.COMPLETED): frozenset({"complete_run"}),
    (RunStatus.RUNNING, RunStatus.WAITING): frozenset({"suspend_run", "fail_run"}),
    (RunStatus.RUNNING, RunStatus.QUEUED): frozenset({"suspend_run", "continue_run"}),
    (RunStatus.RUNNING, RunStatus.CANCELLED): frozenset({"cancel_run"}),
    (RunStatus.RUNNING, RunStatus.FAILED): frozenset(
        {"fail_run", "expire_runs", "fail", "reap", "machine_dead", "release"}
    ),
    (RunStatus.WAITING, RunStatus.QUEUED): frozenset(
        {"wake_timers", "decide_approval", "send_signal", *_CHILD_ENDS, *_CHILD_RUN_ENDS}
    ),
    (RunStatus.WAITING, RunStatus.CANCELLED): frozenset({"cancel_run"}),
    (RunStatus.WAITING, RunStatus.FAILED): frozenset({"expire_runs"}),
    (RunStatus.FAILED, RunStatus.QUEUED): frozenset({"retry_run"}),
}
