-- Key names for records found at run time (a job id read from a stream or a set).
-- They mirror tether/queue/keys.py; `p` is the partition prefix (e.g. "{tether:0}:"),
-- so every key built here carries the same hash tag as the script's KEYS.
local function job_key(p, id) return p .. 'job:' .. id end
local function queue_key(p, fn) return p .. 'q:' .. fn end
local function timeline_key(p, id) return p .. 'tl:' .. id end
local function machine_jobs_key(p, machine) return p .. 'mjobs:' .. machine end
local function cancels_key(p, machine) return p .. 'cancels:' .. machine end
local function idempotency_key(p, key) return p .. 'idem:' .. key end
-- Queue features (docs/queue-features.md). '/' is in no id or name, so `<fn>/<key>` is
-- unambiguous, and so is `pq:<level>:<fn>` (a level is an integer).
local function features_key(p) return p .. 'fx' end
local function levels_key(p, fn) return p .. 'plv:' .. fn end
local function level_queue_key(p, fn, level) return p .. 'pq:' .. level .. ':' .. fn end
local function running_key(p) return p .. 'running' end
local function parked_key(p, fn, ckey) return p .. 'kwait:' .. fn .. '/' .. ckey end
local function rate_key(p, fn, ckey)
  if ckey then return p .. 'rate:' .. fn .. '/' .. ckey end
  return p .. 'rate:' .. fn
end
