-- Key names for records found at run time (a job id read from a stream or a set).
-- They mirror tether/queue/keys.py; `p` is the partition prefix (e.g. "{tether:0}:"),
-- so every key built here carries the same hash tag as the script's KEYS.
local function job_key(p, id) return p .. 'job:' .. id end
local function queue_key(p, fn) return p .. 'q:' .. fn end
-- A machine's sticky queue: the ready stream of the pseudo-function '~<machine>' (no
-- function name starts with '~'), holding activations of runs it keeps in memory.
local function sticky_queue_key(p, machine) return p .. 'q:~' .. machine end
local function sticky_key(p) return p .. 'sticky' end
local function machines_key(p) return p .. 'machines' end
local function timeline_key(p, id) return p .. 'tl:' .. id end
local function machine_jobs_key(p, machine) return p .. 'mjobs:' .. machine end
local function cancels_key(p, machine) return p .. 'cancels:' .. machine end
local function idempotency_key(p, key) return p .. 'idem:' .. key end
local function expiring_key(p) return p .. 'expiring' end
