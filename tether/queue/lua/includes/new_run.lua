--@include run_keys
--@include run_timeline
--@include enqueue_activation
-- Create a run (start_run, and a workflow's child runs in suspend_run): its hash, its
-- place in the runs index, its `created` event and its first activation; without a
-- version it waits for one (`unversioned`; the orchestrator assigns it). `fields` is a
-- flat list of further fields (a child run's `parent` and `parent_step`).
local function new_run(p, runKey, indexKey, unversionedKey, runId, workflow, version,
                       input, now, retention, maxlen, actMaxAttempts, tags, fields)
  redis.call('HSET', runKey, 'id', runId, 'workflow', workflow, 'version', version,
    'status', 'queued', 'input', input, 'created_at', now, 'updated_at', now,
    'activations', 0, 'act_job', '', 'retries', 0, 'failures', 0,
    'retention_ms', retention, 'maxlen', maxlen, 'act_max_attempts', actMaxAttempts,
    'tags', tags, unpack(fields))
  redis.call('ZADD', indexKey, now, runId)
  run_timeline(p, runId, tonumber(maxlen), now, 'created', 'workflow', workflow,
               'version', version)
  if version == '' then
    redis.call('HSET', runKey, 'waiting_on',
      cjson.encode({kind = 'version', workflow = workflow}), 'wait_kind', 'version')
    redis.call('ZADD', unversionedKey, now, runId)
  else
    enqueue_activation(p, runKey, runId, now, 'started')
  end
end
