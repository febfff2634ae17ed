-- Key names of a run's records, for scripts that find a run at run time (a child job's
-- parent). They mirror the run methods of tether/queue/keys.py.
local function run_key(p, id) return p .. 'run:' .. id end
local function steps_key(p, id) return p .. 'steps:' .. id end
local function approvals_key(p, id) return p .. 'approvals:' .. id end
local function signals_key(p, id) return p .. 'signals:' .. id end
local function logs_key(p, id) return p .. 'logs:' .. id end
local function timers_key(p) return p .. 'timers' end
local function run_deadlines_key(p) return p .. 'run_deadlines' end
local function unversioned_key(p) return p .. 'unversioned' end
local function runs_index_key(p) return p .. 'runs' end
local function jobs_index_key(p) return p .. 'jobs' end
local function notify_channel(p) return p .. 'notify' end
local function delayed_key(p) return p .. 'delayed' end
