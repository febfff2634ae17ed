--[[ complete_run: the workflow returned; commit its result and end the activation.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] activation job hash {t:p}:job:<run>:a<n>
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] activation job id  ARGV[4] token
  ARGV[5] machine id: the lease is (machine, token), both checked
  ARGV[6] result (JSON)     ARGV[7..] log lines (JSON)
  Returns {1, 'completed'} | {-1, ''} | {-2, job status} | {-3, run status}
]]
--@include now_ms
--@include run_timeline
--@include finish_run
--@include activation
local runKey, jobKey = KEYS[1], KEYS[2]
local p, runId, jobId, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local refused = check_activation(runKey, jobKey, jobId, token, ARGV[5])
if refused then return refused end
local now = now_ms()
run_logs(p, runId, tonumber(redis.call('HGET', runKey, 'maxlen')) or 1000, now, 7)
end_activation(runKey, '')
finish_run(p, runKey, runId, 'completed', now, {'result', ARGV[6], 'error', ''})
return {1, 'completed'}
