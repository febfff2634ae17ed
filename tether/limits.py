"""Every limit on what one request may ask for or leave behind, in one place.

The API checks each of these before anything is written (a 4xx in the one error shape:
422 for a field over its limit, 409 ``registry_full`` for the registry), so no caller can
grow shared state without bound or make one request cost Redis more than a bounded
amount. docs/http-api.md ("Limits") lists them with their reasons; the worker and the
client read the same constants, so they never send what the API would refuse.
"""

from __future__ import annotations

# -- names and ids ---------------------------------------------------------------------
# Job, run, machine and idempotency ids, function and workflow names, approval keys and
# signal names: they end up in Redis key names and log lines, so they are short and plain.
MAX_ID_LENGTH = 200
ID_CHARS = r"A-Za-z0-9_.:@\-"
# The pattern as OpenAPI documents it (the length is declared beside it).
ID_REGEX = rf"^[{ID_CHARS}]+$"
# The same with its length, for code that checks both at once.
ID_REGEX_WITH_LENGTH = rf"^[{ID_CHARS}]{{1,{MAX_ID_LENGTH}}}$"
ID_RULE = f"1-{MAX_ID_LENGTH} characters of letters, digits and _ . : @ -"

# -- machines --------------------------------------------------------------------------
# Functions one machine may register in one heartbeat (workflow versions count too).
MAX_FUNCTIONS_PER_MACHINE = 1000
# Functions one poll may name: the claim visits each, so this bounds its cost (measured,
# nothing ready: 0.15 ms for 10 names, 2 ms for 1,000, 21 ms for 10,000).
MAX_FUNCTIONS_PER_POLL = 1000
# Functions the registry of one deployment (key prefix) may hold. A name never leaves the
# registry, and /v1/functions and /metrics list every one, so this bounds both.
MAX_REGISTERED_FUNCTIONS = 5000
# The JSON schema of one function's input, serialized (it is stored in the registry).
MAX_INPUT_SCHEMA_BYTES = 64 * 1024
# A machine's ``meta`` (hostname, pid, version...), serialized: stored and listed.
MAX_META_BYTES = 16 * 1024
# Job ids one heartbeat may list as held.
MAX_HELD = 100_000
MAX_JOBS_PER_POLL = 1000
MAX_POLL_WAIT = 30.0  # seconds

# -- jobs ------------------------------------------------------------------------------
MAX_BATCH = 1000  # jobs per batch submission, results per report
MAX_GET_WAIT = 60.0  # seconds a GET ?wait= may hold
MAX_LIST = 1000  # jobs or runs one listing page may hold
# Timeouts are kept in whole milliseconds: anything shorter would round to 0, which means
# "no timeout", so it is refused instead.
MIN_TIMEOUT = 0.001  # seconds
MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds
MAX_DELAY = 366 * 24 * 3600.0  # seconds
# How far away a job's expiry may be (seconds): a job may wait out its longest delay and
# as long again to start. Bounded because the expiry zset keeps an entry until then.
MAX_EXPIRES = 2 * MAX_DELAY
MAX_ATTEMPTS = 1000

# -- queue features (docs/queue-features.md) -------------------------------------------
# Priorities: claims take the highest first. Each level other than 0 in use is a ready
# stream per function and partition, so the range bounds how many a claim may visit.
MIN_PRIORITY = -100
MAX_PRIORITY = 100
# A concurrency limit (a function's, or a key's): more running jobs than this is no limit.
MAX_CONCURRENCY = 100_000
# A rate limit: at most this many starts per period, the period from 1 ms to 1 day.
MAX_RATE = 1_000_000
MIN_RATE_PERIOD = 0.001  # seconds
MAX_RATE_PERIOD = 24 * 3600.0  # seconds

# -- runs ------------------------------------------------------------------------------
MAX_WORKFLOW_VERSION = 2**31 - 1
MAX_STEP_POSITION = 1_000_000  # steps of one run
MAX_LOG_LINES = 10_000  # log lines reported with one step or command

# -- logs (POST /v1/machines/{id}/logs, GET /v1/jobs|runs/{id}/logs) ---------------------
# Lines one ingest request may carry, over all of its jobs: one Lua call per job, each
# XADDing its lines, so this bounds the Redis time one request costs. More: 422.
MAX_LOG_BATCH_LINES = 1000
# Jobs one ingest request may name.
MAX_LOG_BATCH_JOBS = 1000
# A line's message and its exception text are cut to these many characters (the end of a
# traceback is kept, where the error is), marked "…[N chars cut]": truncated, never refused,
# so one huge line does not lose its neighbours.
MAX_LOG_MESSAGE_CHARS = 8192
MAX_LOG_EXC_CHARS = 16_000
MAX_LOG_LOGGER_CHARS = 200  # a logger's name: cut, not refused
# A line (its JSON text) longer than this is read and cut to the limits above; shorter
# ones are stored as they came, without parsing (what keeps a logging job cheap).
MAX_LOG_LINE_CHARS = 4096
MAX_LOG_PAGE = 1000  # lines one read may return
# -- webhooks --------------------------------------------------------------------------
# Every run event of a namespace is written once per webhook that wants it, inside the
# script that changes the run: this bounds that script's extra work.
MAX_WEBHOOKS_PER_NAMESPACE = 20
MAX_WEBHOOK_URL_LENGTH = 2048
MIN_WEBHOOK_SECRET_LENGTH = 16
MAX_WEBHOOK_SECRET_LENGTH = 256
MAX_WEBHOOK_DESCRIPTION = 200

# -- sticky replay ---------------------------------------------------------------------
# Positions a machine keeping a run in memory may ask for at once (sticky replay); one
# waiting on more replays in full instead.
MAX_STICKY_POSITIONS = 1_000
