--[[ begin_activation: a machine holding an activation's lease starts replaying the run.
  The run becomes running; the workflow's own policy (timeout, attempts) is stored the
  first time; the reply carries all the replay needs.

  Sticky replay: a machine that keeps the run's replay suspended in memory since the
  activation that suspended it (ARGV[8]) asks only for the records at the positions it
  still lacks (ARGV[9]: what it waits on, its pending children). It gets them alone
  (a delta) only if the run's `parked` marker still names that machine and activation:
  suspend_run sets it, and every begin (on any machine) and every rewrite of the
  history (reopen_steps) clears it, so between the two only waits were resolved, at
  positions the machine asks for. Otherwise it gets the whole history and replays.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] steps hash          {t:p}:steps:<id>
  KEYS[3] activation job hash {t:p}:job:<run>:a<n>
  KEYS[4] run deadlines zset  {t:p}:run_deadlines
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] activation job id  ARGV[4] token
  ARGV[5] machine id: the lease is (machine, token), both checked
  ARGV[6] workflow max attempts ('' = 1)   ARGV[7] workflow timeout ms ('' = none)
  ARGV[8] the activation job id after which this machine parked the run ('' = none)
  ARGV[9] positions wanted in a delta, comma-separated
  ARGV[10] sticky timeout ms: how long the run's next activations wait for the machine
           that keeps the run before any machine may take them (stored on the run)
  Returns {1, workflow, version, input, {pos, record, ...}, failures, retries, log mark,
           delta (1: the records are only those asked for; 0: the whole history)}
          {-1, ''}          no such run or job
          {-2, job status}  not the current activation, or the lease is not held
          {-3, run status}  the run is finished
]]
--@include now_ms
--@include run_keys
--@include run_timeline
local runKey, stepsKey, jobKey, deadlinesKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local p, runId, jobId, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local run = redis.call('HMGET', runKey, 'status', 'act_job', 'workflow', 'version',
  'input', 'failures', 'retries', 'max_attempts', 'created_at', 'maxlen', 'started_at',
  'log_mark', 'parked')
if not run[1] then return {-1, ''} end
local job = redis.call('HMGET', jobKey, 'status', 'token', 'machine', 'attempt')
if not job[1] then return {-1, ''} end
if job[1] ~= 'running' or job[2] ~= token or job[3] ~= ARGV[5] or run[2] ~= jobId then
  return {-2, job[1]}
end
if run[1] ~= 'queued' and run[1] ~= 'running' then return {-3, run[1]} end

local now = now_ms()
-- Whoever begins, no replay kept in memory elsewhere matches the history any more.
redis.call('HSET', runKey, 'status', 'running', 'updated_at', now, 'parked', '',
           'sticky_ms', ARGV[10])
if not run[11] then redis.call('HSET', runKey, 'started_at', now) end
if not run[8] then
  redis.call('HSET', runKey, 'max_attempts', tonumber(ARGV[6]) or 1)
  if ARGV[7] ~= '' then
    local deadline = tonumber(run[9]) + tonumber(ARGV[7])
    redis.call('HSET', runKey, 'timeout_ms', ARGV[7], 'deadline', deadline)
    redis.call('ZADD', deadlinesKey, deadline, runId)
  end
end
local records, delta = nil, 0
if ARGV[8] ~= '' and run[13] == ARGV[5] .. '|' .. ARGV[8] then
  delta, records = 1, {}
  for pos in string.gmatch(ARGV[9], '[^,]+') do
    local rec = redis.call('HGET', stepsKey, pos)
    if rec then
      records[#records + 1] = pos
      records[#records + 1] = rec
    end
  end
else
  records = redis.call('HGETALL', stepsKey)
end
-- `replay` says which it was: 'sticky' (a delta) or 'full'.
run_timeline(p, runId, tonumber(run[10]) or 1000, now, 'activation_started', 'job', jobId,
             'machine', job[3] or '', 'attempt', job[4] or '', 'prev', run[1],
             'replay', delta == 1 and 'sticky' or 'full')
return {1, run[3], run[4], run[5], records,
        tonumber(run[6]) or 0, tonumber(run[7]) or 0, tonumber(run[12]) or -1, delta}
