--@include keys
--@include run_keys
--@include run_timeline
--@include step_json
--@include enqueue_activation
--@include finish_run
-- A job of a run reached a terminal state (called from finish_job, in the same script).
-- A child job: its outcome becomes its step record, and the run wakes at once if it was
-- waiting on its children and none is pending any more. The run's current activation
-- ending this way (attempts used up on lost machines, or failed by the worker without a
-- run command) fails the run: nothing else would ever resume it.
local function run_job_finished(p, jobKey, jobId, runId, status, now)
  local runKey = run_key(p, runId)
  local run = redis.call('HMGET', runKey, 'status', 'act_job', 'wait_kind',
                         'wait_positions', 'maxlen')
  if not run[1] then return end
  local maxlen = tonumber(run[5]) or 1000
  local job = redis.call('HMGET', jobKey, 'step', 'result', 'error', 'fn')
  if job[1] then
    local stepsKey = steps_key(p, runId)
    local current = redis.call('HGET', stepsKey, job[1])
    if not current then return end
    local rec = cjson.decode(current)
    if rec.status ~= 'pending' or rec.job ~= jobId then return end
    -- `since`: when the call began (its pending record's time), for its trace span.
    local extra = ',"job":' .. cjson.encode(jobId) .. ',"since":' .. (rec.at or now)
    local stepStatus = 'completed'
    if status == 'completed' then
      extra = extra .. ',"result":' .. (job[2] or 'null')
    else
      stepStatus = 'failed'
      local err = job[3]
      if not err or err == '' then
        err = cjson.encode({type = 'ChildFailed', message = 'child job ' .. jobId ..
          ' ended ' .. status})
      end
      extra = extra .. ',"job_status":"' .. status .. '","error":' .. err
    end
    redis.call('HSET', stepsKey, job[1], step_json(rec.name, 'call', stepStatus, now, extra))
    run_timeline(p, runId, maxlen, now, 'child_finished', 'job', jobId,
                 'position', job[1], 'status', status)
    if run[1] == 'waiting' and run[3] == 'children' then
      for pos in string.gmatch(run[4] or '', '[^,]+') do
        if step_status(redis.call('HGET', stepsKey, pos)) == 'pending' then return end
      end
      enqueue_activation(p, runKey, runId, now, 'children_finished')
    end
  elseif jobId == run[2] and status ~= 'completed' and not RUN_TERMINAL[run[1]] then
    local err = job[3]
    if not err or err == '' then
      err = cjson.encode({type = 'ActivationLost', message = 'activation ' .. jobId ..
        ' ended ' .. status})
    end
    finish_run(p, runKey, runId, 'failed', now, {'error', err})
  end
end
