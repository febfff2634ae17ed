"""Every Redis key tether uses, built in one place.

Each key carries a partition hash tag, ``{<prefix>:<partition>}``, and every script
touches the keys of a single partition, so the same code runs on one Redis server and on
Redis Cluster. A run and all of its jobs live in one partition: a child job's id starts
with its run's id and a colon, and partitions are chosen by that first segment.

Scripts build the names of records they discover at run time (a job id read from a
stream) from the partition prefix with the helpers in ``lua/includes/keys.lua``, which
mirror the methods here.

Namespaces (tenants) are a segment of the hash tag: the default namespace keeps the
plain ``{<prefix>:<partition>}`` tag, namespace ``acme`` uses ``{<prefix>:acme:<partition>}``.
Every record of a namespace therefore lives under its own tag (Redis Cluster still sees
one slot per partition), and one ``PSUBSCRIBE {<prefix>:*}:notify`` covers them all.

A few keys belong to the deployment, not to a namespace: the API keys and the set of
namespaces, under the tag ``{<prefix>}`` (``Keys.auth_*``, ``Keys.namespaces``).
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

DEFAULT_NAMESPACE = "default"
# Lower-case letters, digits, '-' and '_': no ':' or braces, so a namespace can never
# reach into another's tag.
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_NAMESPACE = re.compile(NAMESPACE_PATTERN)


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is a valid name, else ValueError."""
    if not _NAMESPACE.match(namespace):
        raise ValueError(
            f"bad namespace {namespace!r}: 1-40 of a-z, 0-9, '-', '_', starting with a "
            "letter or digit"
        )
    return namespace


# The first segment of the ids of schedules' jobs and runs: it picks their partition.
SCHEDULE_ROOT = "sched"


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """The keys of one partition."""

    prefix: str  # e.g. "{tether:0}:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def ready(self, function: str) -> str:
        return f"{self.prefix}q:{function}"

    def sticky_queue(self, machine: str) -> str:
        """The machine's sticky queue: activations of runs it keeps in memory."""
        return self.ready(sticky_function(machine))

    @property
    def sticky(self) -> str:
        """Zset of activation job ids on sticky queues, by when any machine may take them."""
        return f"{self.prefix}sticky"

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

    def machine_owner(self, machine: str) -> str:
        """String: the name of the API key that machine id is bound to (partition 0)."""
        return f"{self.prefix}owner:{machine}"

    # -- queue features (docs/queue-features.md); mirrored in lua/includes/keys.lua ----
    # '/' is in no id or name, so "<fn>/<key>" never collides with another function's.

    @property
    def features(self) -> str:
        """Hash: which functions use priorities, concurrency or rate limits (fields
        ``p/<fn>``, ``x/<fn>``, ``c/<fn>``, ``k/<fn>``, ``r/<fn>``, ``kr/<fn>``). Absent
        while none does: a claim then checks nothing more than its existence."""
        return f"{self.prefix}fx"

    def levels(self, function: str) -> str:
        """Zset of the priority levels (other than 0) that have a ready stream."""
        return f"{self.prefix}plv:{function}"

    def level_ready(self, function: str, level: int | str) -> str:
        """Ready stream of the jobs of ``function`` with priority ``level`` (not 0)."""
        return f"{self.prefix}pq:{level}:{function}"

    @property
    def running(self) -> str:
        """Hash: running jobs that hold a concurrency slot, by ``<fn>`` and ``<fn>/<key>``."""
        return f"{self.prefix}running"

    def parked(self, function: str, key: str) -> str:
        """List of queued jobs waiting for a slot of their concurrency key, oldest first."""
        return f"{self.prefix}kwait:{function}/{key}"

    def rate(self, function: str, key: str | None = None) -> str:
        """String: a rate limit's theoretical arrival time (GCRA, ms), expiring with it."""
        if key is None:
            return f"{self.prefix}rate:{function}"
        return f"{self.prefix}rate:{function}/{key}"

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
        """Stream of a run's log lines (ctx.log and the ``logging`` of its activations),
        bounded (its timeline is not, while open). Mirrored in lua/includes/run_keys.lua."""
        return f"{self.prefix}logs:{run_id}"

    def job_logs(self, job_id: str) -> str:
        """Stream of a job's captured ``logging`` lines, bounded; expires with the job.
        Apart from ``logs``: a job and a run may share an id. Mirrored in lua/includes/keys.lua."""
        return f"{self.prefix}jlogs:{job_id}"

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

    # -- schedules (tether/queue/schedules.py): all in the partition of ``SCHEDULE_ROOT`` --

    def schedule(self, name: str) -> str:
        return f"{self.prefix}sched:{name}"

    @property
    def schedules(self) -> str:
        """Zset of active (not paused) schedule names by their next tick (ms)."""
        return f"{self.prefix}schedules"

    # -- webhooks (tether/queue/webhooks.py); mirrored in lua/includes/hook_event.lua --

    def hook(self, hook_id: str) -> str:
        """Hash: one webhook (url, secret, events...), in the namespace's partition 0."""
        return f"{self.prefix}hook:{hook_id}"

    @property
    def hooks(self) -> str:
        """Hash: webhook id -> the events it wants, space-separated: partition 0's is the
        namespace's list of webhooks, every other partition holds a copy for its run
        scripts (which may read only their own partition's keys)."""
        return f"{self.prefix}hooks"

    def hook_delivery(self, delivery_id: str) -> str:
        """Hash: one delivery of one event to one webhook, in the run's partition."""
        return f"{self.prefix}hookd:{delivery_id}"

    @property
    def hook_due(self) -> str:
        """Zset: delivery ids by when they are due (or their claim's lease ends)."""
        return f"{self.prefix}hook_due"

    def hook_log(self, hook_id: str) -> str:
        """Zset: a webhook's newest deliveries in this partition, by creation (ms)."""
        return f"{self.prefix}hook_log:{hook_id}"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

    @property
    def expiring(self) -> str:
        """Zset of jobs given an ``expires`` and not started yet, by their expiry (ms):
        written only for such jobs (lua/expire.lua)."""
        return f"{self.prefix}expiring"

    @property
    def machines(self) -> str:
        return f"{self.prefix}machines"

    @property
    def plane(self) -> str:
        """Hash: when the control plane could last hear machines (lua/plane_pass.lua)."""
        return f"{self.prefix}plane"

    @property
    def owner(self) -> str:
        """String: the orchestrator replica that owns this partition's passes, expiring
        with its lease (lua/partition_lease.lua)."""
        return f"{self.prefix}owner"

    @property
    def orchestrators(self) -> str:
        """Zset of orchestrator replica ids by their last sign of life (ms); partition 0's
        only (lua/orchestrator_alive.lua)."""
        return f"{self.prefix}orchestrators"

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


# A machine's sticky queue is the ready stream of the pseudo-function ``~<machine>`` (no
# function name may start with "~"), so long polls wait on it and are woken (``q:~<m>``)
# like on any function's queue.
STICKY_PREFIX = "~"


def sticky_function(machine: str) -> str:
    return f"{STICKY_PREFIX}{machine}"


# The messages on a partition's notify channel (published by the Lua scripts, read by
# tether/api/notify.py), "<kind>:<names>", names space-separated (never in an id):
READY = "q"  # q:<function>, or q:<function> <n>: n jobs of the function became ready
JOB_FINISHED = "j"  # j:<job id> <job id> ...: jobs that reached a terminal state
RUN_FINISHED = "r"  # r:<run id>: a workflow run reached a terminal state
RUN_STATUS = "s"  # s:<run id> <status>: a run's status changed (read by GET /v1/events)
# l:j/<job id> r/<run id> ...: log lines of these jobs and runs were stored (wakes
# log followers)
LOGS = "l"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for a deployment: a prefix and a number of partitions."""

    prefix: str = "tether"
    partitions: int = 1
    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        if any(c in self.prefix for c in "{}"):
            raise ValueError("the key prefix may not contain braces")
        check_namespace(self.namespace)

    @property
    def tag(self) -> str:
        """The hash tag's text before the partition: ``tether`` or ``tether:acme``."""
        if self.namespace == DEFAULT_NAMESPACE:
            return self.prefix
        return f"{self.prefix}:{self.namespace}"

    def for_namespace(self, namespace: str) -> Keys:
        """The same deployment's keys for ``namespace``."""
        if namespace == self.namespace:
            return self
        return _namespace_keys(self.prefix, self.partitions, namespace)

    def namespace_of_channel(self, channel: str) -> str | None:
        """The namespace whose notify channel this is (None: not one of ours)."""
        head = f"{{{self.prefix}:"
        if not channel.startswith(head):
            return None
        inner = channel[len(head) : channel.find("}")]
        ns, sep, _ = inner.rpartition(":")
        return ns if sep else DEFAULT_NAMESPACE

    def partition(self, index: int) -> PartitionKeys:
        return _partition_keys(self.tag, index)

    def partition_of(self, record_id: str) -> int:
        """The partition of a job or run: by the id's first colon-separated segment."""
        if self.partitions == 1:
            return 0
        root = record_id.split(":", 1)[0]
        return zlib.crc32(root.encode()) % self.partitions

    def for_id(self, record_id: str) -> PartitionKeys:
        return self.partition(self.partition_of(record_id))

    def schedules_partition(self) -> PartitionKeys:
        """Where schedules live: the partition of ids ``sched:...``, which is also where
        the jobs and runs they start live (their ids are ``sched:<name>:<tick>``), so a
        tick and what it starts are one atomic script."""
        return self.for_id(SCHEDULE_ROOT + ":")

    def all_partitions(self) -> list[PartitionKeys]:
        return [self.partition(i) for i in range(self.partitions)]

    @property
    def channel_pattern(self) -> str:
        """Matches every partition's notify channel of every namespace, for one
        subscription per process."""
        return f"{{{self.prefix}:*}}:notify"

    # -- the deployment's own keys (one tag, whatever the namespace) ------------------

    def auth_key(self, digest: str) -> str:
        """Hash: one API key's record (name, role, namespace, functions, created_ms,
        last_used_ms), found by the SHA-256 of the key; the key itself is never stored."""
        return f"{{{self.prefix}}}:apikey:{digest}"

    @property
    def auth_names(self) -> str:
        """Hash: key name -> the digest of that key (names are unique per deployment)."""
        return f"{{{self.prefix}}}:apikeys"

    @property
    def namespaces(self) -> str:
        """Set: every namespace some key was ever made for (the orchestrator serves each)."""
        return f"{{{self.prefix}}}:namespaces"


@functools.lru_cache(maxsize=1024)
def _namespace_keys(prefix: str, partitions: int, namespace: str) -> Keys:
    return Keys(prefix=prefix, partitions=partitions, namespace=namespace)


@functools.lru_cache(maxsize=1024)
def _partition_keys(prefix: str, index: int) -> PartitionKeys:
    # Looked up per job on the hot paths: built once per (prefix, partition).
    return PartitionKeys(f"{{{prefix}:{index}}}:")
