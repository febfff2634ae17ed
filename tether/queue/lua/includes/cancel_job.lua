--@include keys
--@include timeline
--@include run_keys
--@include finish_run
--@include finish_job
--@include leave_ready
-- Cancel one job from inside another transition (a run cancelled or timed out), as
-- cancel.lua does: queued or delayed jobs end at once; a running one is marked and its
-- machine learns of it at its next heartbeat.
local function cancel_job(p, jobId, now, retentionMs, maxlen, errorJson)
  local jobKey = job_key(p, jobId)
  local job = redis.call('HMGET', jobKey, 'status', 'machine', 'fn', 'entry', 'priority',
                       'parked', 'ckey')
  local status = job[1]
  if status == 'running' then
    redis.call('HSET', jobKey, 'cancel_requested', 1)
    redis.call('SADD', cancels_key(p, job[2]), jobId)
    timeline(p, jobKey, jobId, maxlen, now, 'cancel_requested', status)
  elseif status == 'queued' or status == 'delayed' then
    if status == 'queued' then
      leave_ready(p, jobId, job[3], job[4], job[5], job[6], job[7])
    else
      redis.call('ZREM', delayed_key(p), jobId)
    end
    timeline(p, jobKey, jobId, maxlen, now, 'cancelled', status)
    finish_job(p, jobKey, jobId, 'cancelled', now, retentionMs,
               notify_channel(p), {'error', errorJson}, maxlen)
  end
end

-- Stop a run for good (cancelled, or failed by its workflow timeout): the run ends
-- first, so its children finishing as cancelled find it terminal and wake nothing.
-- Its child runs (ctx.child) still going are cancelled the same way, depth first.
local function stop_run(p, runKey, runId, status, now, errorJson)
  local r = redis.call('HMGET', runKey, 'act_job', 'retention_ms', 'maxlen')
  local retention, maxlen = tonumber(r[2]) or 604800000, tonumber(r[3]) or 1000
  finish_run(p, runKey, runId, status, now, {'error', errorJson})
  local stepsKey = steps_key(p, runId)
  local fields = redis.call('HGETALL', stepsKey)
  for i = 2, #fields, 2 do
    local rec = cjson.decode(fields[i])
    if rec.kind == 'call' and rec.status == 'pending' then
      cancel_job(p, rec.job, now, retention, maxlen, errorJson)
    elseif rec.kind == 'child' and rec.status == 'pending' then
      local childKey = run_key(p, rec.run)
      local childStatus = redis.call('HGET', childKey, 'status')
      if childStatus and not RUN_TERMINAL[childStatus] then
        stop_run(p, childKey, rec.run, 'cancelled', now, errorJson)
      end
    end
  end
  if r[1] and r[1] ~= '' then cancel_job(p, r[1], now, retention, maxlen, errorJson) end
end
