--[[ retry_run: resume a failed run from the step that failed it. Every other recorded
  step is kept (and is not run again); the failed step's record is dropped so it runs
  anew. The run's records stop expiring.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] steps hash          {t:p}:steps:<id>
  KEYS[3] run deadlines zset  {t:p}:run_deadlines
  ARGV[1] partition prefix  ARGV[2] run id
  Returns {1, 'queued'} | {-1, ''} no such run | {-3, status} the run is not failed
]]
--@include now_ms
--@include run_keys
--@include enqueue_activation
local runKey, stepsKey, deadlinesKey = KEYS[1], KEYS[2], KEYS[3]
local p, runId = ARGV[1], ARGV[2]
local run = redis.call('HMGET', runKey, 'status', 'failed_position', 'retries',
                       'timeout_ms', 'maxlen')
if not run[1] then return {-1, ''} end
if run[1] ~= 'failed' then return {-3, run[1]} end
local now = now_ms()
if run[2] and run[2] ~= '' then redis.call('HDEL', stepsKey, run[2]) end
for _, key in ipairs({runKey, stepsKey, approvals_key(p, runId), signals_key(p, runId),
                      timeline_key(p, runId)}) do
  redis.call('PERSIST', key)
end
redis.call('HSET', runKey, 'retries', (tonumber(run[3]) or 0) + 1, 'failures', 0,
  'error', '', 'failed_position', '', 'finished_at', '')
if run[4] and run[4] ~= '' then
  -- The workflow's timeout counts again from the retry.
  redis.call('HSET', runKey, 'deadline', now + tonumber(run[4]))
  redis.call('ZADD', deadlinesKey, now + tonumber(run[4]), runId)
end
run_timeline(p, runId, tonumber(run[5]) or 1000, now, 'retried', 'position', run[2] or '')
enqueue_activation(p, runKey, runId, now, 'retried')
return {1, 'queued'}
