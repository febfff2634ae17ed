--@include keys
--@include run_keys
--@include run_timeline
-- Move a run into a terminal state (completed, failed, cancelled): stamp it, start the
-- retention clock of all its records, drop it from every timer set, tell the listeners.
-- `fields` is a flat list of extra HSET field/value pairs.
local function finish_run(p, runKey, runId, status, now, fields)
  local r = redis.call('HMGET', runKey, 'status', 'retention_ms', 'maxlen')
  redis.call('HSET', runKey, 'status', status, 'finished_at', now, 'updated_at', now,
    'waiting_on', '', 'wait_kind', '', 'wait_key', '', 'wait_pos', '',
    'wait_positions', '', 'wake_at', '', 'act_job', '', unpack(fields))
  local retention = tonumber(r[2]) or 604800000
  for _, key in ipairs({runKey, steps_key(p, runId), approvals_key(p, runId),
                        signals_key(p, runId), timeline_key(p, runId)}) do
    redis.call('PEXPIRE', key, retention)
  end
  redis.call('ZREM', timers_key(p), runId)
  redis.call('ZREM', run_deadlines_key(p), runId)
  redis.call('ZREM', unversioned_key(p), runId)
  run_timeline(p, runId, tonumber(r[3]) or 1000, now, status, 'prev', r[1] or '')
  -- Requests waiting for the run (GET ?wait=) hear it on the API's one subscription
  -- (message kinds: tether/queue/keys.py).
  redis.call('PUBLISH', notify_channel(p), 'r:' .. runId)
end

local RUN_TERMINAL = {completed = true, failed = true, cancelled = true}
