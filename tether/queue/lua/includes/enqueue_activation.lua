--@include keys
--@include run_keys
--@include run_timeline
--@include make_ready
--@include new_job
-- Queue the run's next activation: an ordinary job `<run>:a<n>` on the function
-- `wf:<workflow>@<version>`, so only machines serving that version ever see it. The run
-- becomes `queued` and forgets what it waited on. Returns the activation job id.
-- (new_job writes status 'queued'; make_ready or the sticky branch gives it its entry.)
local function enqueue_activation(p, runKey, runId, now, reason)
  local r = redis.call('HMGET', runKey, 'workflow', 'version', 'activations',
                       'act_max_attempts', 'maxlen', 'parked', 'sticky_ms', 'trace')
  local n = (tonumber(r[3]) or 0) + 1
  local jobId = runId .. ':a' .. n
  local jobKey = job_key(p, jobId)
  -- No timeout of its own (a workflow's limit is its run's); attempts: lost machines
  -- in a row (RunEngine.activation_max_attempts, kept on the run by start_run). The
  -- run's trace context goes with it, so the claim hands it to the worker.
  local fields = {'activation', n}
  if r[8] then fields[3], fields[4] = 'trace', r[8] end
  new_job(jobKey, 'wf:' .. r[1] .. '@' .. r[2], cjson.encode({run = runId, activation = n}),
          'queued', r[4], 0, now, runId, fields)
  redis.call('ZADD', jobs_index_key(p), now, jobId)
  -- Sticky replay: a live machine that keeps the run in memory gets it first, on its
  -- own queue; `unstick` puts it on the shared one after sticky_ms if it is still
  -- there (the machine is busy or gone), and machine_dead at once if the machine dies.
  local machine = r[6] and string.match(r[6], '^(.*)|')
  if machine and redis.call('ZSCORE', machines_key(p), machine) then
    local entry = redis.call('XADD', sticky_queue_key(p, machine), '*', 'id', jobId)
    redis.call('HSET', jobKey, 'entry', entry)
    redis.call('ZADD', sticky_key(p), now + (tonumber(r[7]) or 1000), jobId)
    redis.call('PUBLISH', notify_channel(p), 'q:~' .. machine)
  else
    make_ready(p, jobKey, jobId, notify_channel(p))
  end
  redis.call('HSET', runKey, 'status', 'queued', 'activations', n, 'act_job', jobId,
    'waiting_on', '', 'wait_kind', '', 'wait_key', '', 'wait_pos', '',
    'wait_positions', '', 'wake_at', '', 'updated_at', now)
  redis.call('ZREM', timers_key(p), runId)
  run_timeline(p, runId, tonumber(r[5]) or 1000, now, 'activation_queued', 'job', jobId,
               'reason', reason)
  return jobId
end
