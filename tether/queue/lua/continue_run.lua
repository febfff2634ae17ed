--[[ continue_run: the workflow continues as new (ctx.continue_as_new): the same run starts
  over from the top with a new input and an empty history, so an unbounded loop keeps a
  bounded history (and a flat replay cost). Decisions and buffered signals stay; the
  timeline goes on (bounded by its own maxlen). The next activation is queued at once.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] activation job hash {t:p}:job:<run>:a<n>
  KEYS[3] steps hash          {t:p}:steps:<id>
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] activation job id  ARGV[4] token
  ARGV[5] machine id: the lease is (machine, token), both checked
  ARGV[6] the new input (JSON)
  ARGV[7..] log lines (JSON)
  Returns {1, 'queued'} | {-1, ''} | {-2, job status} | {-3, run status}
]]
--@include now_ms
--@include run_timeline
--@include activation
--@include enqueue_activation
local runKey, jobKey, stepsKey = KEYS[1], KEYS[2], KEYS[3]
local p, runId, jobId, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local refused = check_activation(runKey, jobKey, jobId, token, ARGV[5])
if refused then return refused end
local now = now_ms()
local r = redis.call('HMGET', runKey, 'maxlen', 'continued')
local maxlen = tonumber(r[1]) or 1000
run_logs(p, runId, maxlen, now, 7)
end_activation(runKey, '')
redis.call('DEL', stepsKey)
local generation = (tonumber(r[2]) or 0) + 1
redis.call('HSET', runKey, 'input', ARGV[6], 'continued', generation, 'failures', 0,
  'log_mark', -1, 'reopen', '', 'resume_after', '', 'error', '', 'updated_at', now)
run_timeline(p, runId, maxlen, now, 'continued_as_new', 'generation', generation)
enqueue_activation(p, runKey, runId, now, 'continued')
return {1, 'queued'}
