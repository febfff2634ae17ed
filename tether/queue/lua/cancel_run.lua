--[[ cancel_run: cancel a run and everything it started: its pending child jobs and its
  current activation (queued ones end at once; running ones are told at their machine's
  next heartbeat, and their late reports are rejected because the run is finished).

  KEYS[1] run hash  {t:p}:run:<id>
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] reason (JSON error)
  Returns {1, 'cancelled'} | {-1, ''} no such run | {-3, status} already finished
]]
--@include now_ms
--@include finish_run
--@include cancel_job
local runKey = KEYS[1]
local p, runId = ARGV[1], ARGV[2]
local status = redis.call('HGET', runKey, 'status')
if not status then return {-1, ''} end
if RUN_TERMINAL[status] then return {-3, status} end
stop_run(p, runKey, runId, 'cancelled', now_ms(), ARGV[3])
return {1, 'cancelled'}
