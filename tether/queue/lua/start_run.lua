--[[ start_run: create a workflow run and queue its first activation. The run id is the
  idempotency key: the same id returns the existing run, never a second one.

  KEYS[1] run hash         {t:p}:run:<id>
  KEYS[2] runs index zset  {t:p}:runs
  KEYS[3] unversioned zset {t:p}:unversioned
  ARGV[1] partition prefix  ARGV[2] run id   ARGV[3] workflow  ARGV[4] version ('' = no
  live machine serves the workflow yet: the run waits for one)
  ARGV[5] input (JSON)      ARGV[6] retention ms  ARGV[7] timeline maxlen
  ARGV[8] max attempts of each activation job (lost machines)
  ARGV[9] tags (a JSON object of the caller's labels, '' = none)
  ARGV[10] trace (the compact trace context, TraceContext.to_field; '' = none): copied
           onto every activation, child job and child run of the run
  Returns {1, status, created (1|0), version, the run's hash as a flat list (so the
          caller has the record without a read of its own)}
          {-4, existing workflow}   the id already names a run of another workflow
]]
--@include now_ms
--@include new_run
local runKey, indexKey, unversionedKey = KEYS[1], KEYS[2], KEYS[3]
local p, runId, workflow, version = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local found = redis.call('HMGET', runKey, 'workflow', 'status', 'version')
if found[1] then
  if found[1] ~= workflow then return {-4, found[1]} end
  return {1, found[2], 0, found[3], redis.call('HGETALL', runKey)}
end

new_run(p, runKey, indexKey, unversionedKey, runId, workflow, version, ARGV[5], now_ms(),
        ARGV[6], ARGV[7], ARGV[8], ARGV[9], (ARGV[10] or '') ~= '' and {'trace', ARGV[10]} or {})
return {1, 'queued', 1, version, redis.call('HGETALL', runKey)}
