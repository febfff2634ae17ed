--[[ expire_runs: fail the runs whose workflow-level timeout passed, and cancel what they
  started (children, current activation), as cancel_run does.

  KEYS[1] run deadlines zset  {t:p}:run_deadlines
  ARGV[1] partition prefix  ARGV[2] max runs
  Returns the number of runs failed
]]
--@include now_ms
--@include run_keys
--@include finish_run
--@include cancel_job
--@include take_due
local deadlinesKey = KEYS[1]
local p = ARGV[1]
local now = now_ms()
local expired = 0
for _, runId in ipairs(take_due(deadlinesKey, now, ARGV[2])) do
  local runKey = run_key(p, runId)
  local run = redis.call('HMGET', runKey, 'status', 'deadline', 'timeout_ms')
  local deadline = tonumber(run[2])
  if run[1] and not RUN_TERMINAL[run[1]] and deadline and deadline <= now then
    stop_run(p, runKey, runId, 'failed', now, cjson.encode({type = 'WorkflowTimeout',
      message = 'the run did not finish within its timeout of ' .. run[3] .. ' ms'}))
    expired = expired + 1
  end
end
return expired
