--@include keys
--@include run_keys
--@include run_timeline
--@include make_ready
--@include new_job
-- Queue the run's next activation: an ordinary job `<run>:a<n>` on the function
-- `wf:<workflow>@<version>`, so only machines serving that version ever see it. The run
-- becomes `queued` and forgets what it waited on. Returns the activation job id.
local function enqueue_activation(p, runKey, runId, now, reason)
  local r = redis.call('HMGET', runKey, 'workflow', 'version', 'activations',
                       'act_max_attempts', 'maxlen', 'trace')
  local n = (tonumber(r[3]) or 0) + 1
  local jobId = runId .. ':a' .. n
  local jobKey = job_key(p, jobId)
  -- No timeout of its own (a workflow's limit is its run's); attempts: lost machines
  -- in a row (RunEngine.activation_max_attempts, kept on the run by start_run). The
  -- run's trace context goes with it, so the claim hands it to the worker.
  local fields = {'activation', n}
  if r[6] then fields[3], fields[4] = 'trace', r[6] end
  new_job(jobKey, 'wf:' .. r[1] .. '@' .. r[2], cjson.encode({run = runId, activation = n}),
          'queued', r[4], 0, now, runId, fields)
  redis.call('ZADD', jobs_index_key(p), now, jobId)
  make_ready(p, jobKey, jobId, notify_channel(p))
  redis.call('HSET', runKey, 'status', 'queued', 'activations', n, 'act_job', jobId,
    'waiting_on', '', 'wait_kind', '', 'wait_key', '', 'wait_pos', '',
    'wait_positions', '', 'wake_at', '', 'updated_at', now)
  redis.call('ZREM', timers_key(p), runId)
  run_timeline(p, runId, tonumber(r[5]) or 1000, now, 'activation_queued', 'job', jobId,
               'reason', reason)
  return jobId
end
