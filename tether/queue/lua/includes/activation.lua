-- Checks that the caller runs the run's current activation with a live lease: the job is
-- running, leased to `machine` with `token`. Returns nil when it does, else the reply to
-- give: {-1} no such run or job, {-2, status} stale or forged token, another machine's
-- lease, or not the current activation, {-3, run status} the run is no longer running.
local function check_activation(runKey, jobKey, jobId, token, machine)
  local run = redis.call('HMGET', runKey, 'status', 'act_job')
  if not run[1] then return {-1, ''} end
  local job = redis.call('HMGET', jobKey, 'status', 'token', 'machine')
  if not job[1] then return {-1, ''} end
  if job[1] ~= 'running' or job[2] ~= token or job[3] ~= machine or run[2] ~= jobId then
    return {-2, job[1]}
  end
  if run[1] ~= 'running' then return {-3, run[1]} end
  return nil
end

-- The activation has said how the run goes on: it is no longer the run's current one,
-- so nothing it sends from here on is accepted. Its job stays leased until the worker
-- reports it through /results like any job (the run hook then ignores it).
-- `parked` ('' or '<machine>|<activation job id>'): the machine that keeps this run's
-- replay in memory (sticky replay, see begin_activation), set by suspend_run only.
local function end_activation(runKey, parked)
  redis.call('HSET', runKey, 'act_job', '', 'parked', parked)
end
