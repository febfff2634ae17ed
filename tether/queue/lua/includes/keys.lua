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
local function job_logs_key(p, id) return p .. 'jlogs:' .. id end
local function machine_jobs_key(p, machine) return p .. 'mjobs:' .. machine end
local function cancels_key(p, machine) return p .. 'cancels:' .. machine end
local function idempotency_key(p, key) return p .. 'idem:' .. key end
local function expiring_key(p) return p .. 'expiring' end
-- The keys of the queue features (docs/queue-features.md), all from one function: every
-- `local function` of a script is a closure made on each call, and each costs Redis
-- instructions on the plain path too (bench/redis_instructions.py --scripts-only).
-- `kind`: 'fx' features hash, 'plv' levels of `fn`, 'pq' ready stream of `fn` at level
-- `arg`, 'running' running counts, 'kwait' jobs parked behind key `arg` of `fn`, 'rate'
-- rate state of `fn` (or of its key `arg`). '/' is in no id or name, so `<fn>/<key>` is
-- unambiguous, and so is `pq:<level>:<fn>` (a level is an integer).
local function feature_key(p, kind, fn, arg)
  if kind == 'pq' then return p .. 'pq:' .. arg .. ':' .. fn end
  if kind == 'kwait' then return p .. 'kwait:' .. fn .. '/' .. arg end
  if kind == 'rate' and arg then return p .. 'rate:' .. fn .. '/' .. arg end
  if fn then return p .. kind .. ':' .. fn end
  return p .. kind
end
