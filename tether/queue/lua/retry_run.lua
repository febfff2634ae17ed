--[[ retry_run: resume a failed run where its unhandled failure happened: the records
  the failure left to run again (its step, or every failed child of its gather, and
  anything recorded after it) are dropped; every other record is kept (and is not run
  again), handled failures included. The run's records stop expiring.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] steps hash          {t:p}:steps:<id>
  KEYS[3] run deadlines zset  {t:p}:run_deadlines
  ARGV[1] partition prefix  ARGV[2] run id
  Returns {1, 'queued'} | {-1, ''} no such run | {-3, status} the run is not failed
]]
--@include now_ms
--@include run_keys
--@include enqueue_activation
--@include reopen_steps
local runKey, stepsKey, deadlinesKey = KEYS[1], KEYS[2], KEYS[3]
local p, runId = ARGV[1], ARGV[2]
local run = redis.call('HMGET', runKey, 'status', 'reopen', 'resume_after', 'retries',
                       'timeout_ms', 'maxlen', 'failed_position')
if not run[1] then return {-1, ''} end
if run[1] ~= 'failed' then return {-3, run[1]} end
local now = now_ms()
local reopen, after = run[2] or '', run[3] or ''
if reopen == '' and run[7] and run[7] ~= '' then
  -- A run failed before resume points existed: its one failed position.
  reopen, after = run[7], run[7]
end
reopen_steps(p, runKey, stepsKey, runId, reopen, after)
for _, key in ipairs({runKey, stepsKey, approvals_key(p, runId), signals_key(p, runId),
                      timeline_key(p, runId), logs_key(p, runId)}) do
  redis.call('PERSIST', key)
end
redis.call('HSET', runKey, 'retries', (tonumber(run[4]) or 0) + 1, 'failures', 0,
  'error', '', 'reopen', '', 'resume_after', '', 'failed_position', '', 'finished_at', '')
if run[5] and run[5] ~= '' then
  -- The workflow's timeout counts again from the retry.
  redis.call('HSET', runKey, 'deadline', now + tonumber(run[5]))
  redis.call('ZADD', deadlinesKey, now + tonumber(run[5]), runId)
end
run_timeline(p, runId, tonumber(run[6]) or 1000, now, 'retried', 'reopen', reopen,
             'after', after)
enqueue_activation(p, runKey, runId, now, 'retried')
return {1, 'queued'}
