--[[ record_step: durably record a step's outcome before the workflow goes on. Only the
  run's current activation, holding its lease, can write: a stale activation (its machine
  was presumed dead and the run moved on) is rejected and changes nothing.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] steps hash          {t:p}:steps:<id>
  KEYS[3] activation job hash {t:p}:job:<run>:a<n>
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] activation job id  ARGV[4] token
  ARGV[5] machine id: the lease is (machine, token), both checked
  ARGV[6] position          ARGV[7] step name  ARGV[8] step status
  ARGV[9] record (a JSON object; the server's time is added as "at")
  ARGV[10..] log lines (JSON) emitted since the last call
  Returns {1, 'recorded'} | {1, 'exists'} (this step was recorded already)
          {-1, ''} no such run or job   {-2, job status} stale activation
          {-3, run status} the run is no longer running (e.g. cancelled)
          {-5, recorded name} another step is recorded at this position
]]
--@include now_ms
--@include run_keys
--@include run_timeline
--@include step_json
--@include activation
local runKey, stepsKey, jobKey = KEYS[1], KEYS[2], KEYS[3]
local p, runId, jobId, token, pos = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local refused = check_activation(runKey, jobKey, jobId, token, ARGV[5])
if refused then return refused end
local existing = redis.call('HGET', stepsKey, pos)
if existing then
  local name = cjson.decode(existing).name
  if name ~= ARGV[7] then return {-5, name} end
  return {1, 'exists'}
end
local now = now_ms()
local maxlen = tonumber(redis.call('HGET', runKey, 'maxlen')) or 1000
run_logs(p, runId, maxlen, now, 10)
redis.call('HSET', stepsKey, pos, with_at(ARGV[9], now))
redis.call('HSET', runKey, 'updated_at', now)
run_timeline(p, runId, maxlen, now, 'step', 'position', pos, 'name', ARGV[7],
             'status', ARGV[8], 'job', jobId)
return {1, 'recorded'}
