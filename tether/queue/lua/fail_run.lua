--[[ fail_run: the workflow raised. With attempts left under its retry policy, the run
  waits out a backoff and resumes where the unhandled failure happened (see
  includes/reopen_steps.lua); otherwise it is failed, and remembers that resume point
  for a manual retry_run. Either way the activation ends.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] activation job hash {t:p}:job:<run>:a<n>
  KEYS[3] steps hash          {t:p}:steps:<id>
  KEYS[4] timers zset         {t:p}:timers
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] activation job id  ARGV[4] token
  ARGV[5] machine id: the lease is (machine, token), both checked
  ARGV[6] error (JSON)
  ARGV[7] positions to run again, comma-separated ('' = none)
  ARGV[8] last position kept: records past it are dropped ('' = keep all)
  ARGV[9] retryable (1|0)   ARGV[10] backoff ms before the next attempt
  ARGV[11..] log lines (JSON)
  Returns {1, 'failed'} | {1, 'waiting'} (a retry is scheduled)
          {-1, ''} | {-2, job status} | {-3, run status}
]]
--@include now_ms
--@include run_timeline
--@include finish_run
--@include activation
--@include reopen_steps
local runKey, jobKey, stepsKey, timersKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local p, runId, jobId, token, errorJson = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local refused = check_activation(runKey, jobKey, jobId, token, ARGV[5])
if refused then return refused end
local now = now_ms()
local r = redis.call('HMGET', runKey, 'maxlen', 'failures', 'max_attempts')
local maxlen = tonumber(r[1]) or 1000
run_logs(p, runId, maxlen, now, 11)
end_activation(runKey, '')
local failures = (tonumber(r[2]) or 0) + 1
redis.call('HSET', runKey, 'failures', failures)
if ARGV[9] == '1' and failures < (tonumber(r[3]) or 1) then
  reopen_steps(p, runKey, stepsKey, runId, ARGV[7], ARGV[8])
  local due = now + tonumber(ARGV[10])
  redis.call('HSET', runKey, 'status', 'waiting', 'wait_kind', 'retry', 'wake_at', due,
    'waiting_on', '{"kind":"retry","attempt":' .. (failures + 1) .. '}',
    'error', errorJson, 'updated_at', now)
  redis.call('ZADD', timersKey, due, runId)
  run_timeline(p, runId, maxlen, now, 'retry_scheduled', 'attempt', failures + 1,
               'due', due, 'error', errorJson)
  return {1, 'waiting'}
end
finish_run(p, runKey, runId, 'failed', now, {'error', errorJson,
           'reopen', ARGV[7], 'resume_after', ARGV[8]})
return {1, 'failed'}
