--@include keys
--@include run_keys
--@include timeline
--@include make_ready
--@include enqueue_activation
-- Start what a schedule starts, under the id `id`: a job of the schedule's function
-- (its record laid out as enqueue.lua lays one out) or a run of its workflow (as
-- start_run.lua creates one). The id is the idempotency key: an id that already names a
-- job or run starts nothing. `version` is the workflow version to run ('' = none known
-- yet: the run waits for a machine, as start_run's do). Returns 1 if it started
-- something, 0 if the id was taken.
-- A run keeps a trace context, which its activations and children copy; a scheduled
-- run's is the one tether.protocol.job_trace derives from its id (no caller gave one):
-- sha1 of the id for the trace id, of '<id>/enqueue' for the span id, sampled.
local function derived_hex(seed, digits)
  local hex = string.sub(redis.sha1hex(seed), 1, digits)
  if not string.find(hex, '[^0]') then hex = string.rep('0', digits - 1) .. '1' end
  return hex
end

local function derived_trace(id)
  return derived_hex(id, 32) .. derived_hex(id .. '/enqueue', 16) .. '01'
end

local function start_scheduled(p, schedKey, id, now, version, retentionMs, jobMaxlen,
                               runMaxlen, actMaxAttempts)
  local s = redis.call('HMGET', schedKey, 'kind', 'target', 'input', 'max_attempts',
                       'timeout_ms', 'name')
  local kind, target, input = s[1], s[2], s[3]
  if kind == 'run' then
    local runKey = run_key(p, id)
    if redis.call('EXISTS', runKey) == 1 then return 0 end
    redis.call('HSET', runKey, 'id', id, 'workflow', target, 'version', version,
      'status', 'queued', 'input', input, 'created_at', now, 'updated_at', now,
      'activations', 0, 'act_job', '', 'retries', 0, 'failures', 0,
      'retention_ms', retentionMs, 'maxlen', runMaxlen, 'act_max_attempts', actMaxAttempts,
      'schedule', s[6], 'trace', derived_trace(id))
    redis.call('ZADD', runs_index_key(p), now, id)
    run_timeline(p, id, runMaxlen, now, 'created', 'workflow', target, 'version', version,
                 'schedule', s[6])
    if version == '' then
      redis.call('HSET', runKey, 'waiting_on',
        cjson.encode({kind = 'version', workflow = target}), 'wait_kind', 'version')
      redis.call('ZADD', unversioned_key(p), now, id)
    else
      enqueue_activation(p, runKey, id, now, 'started')
    end
    return 1
  end
  local jobKey = job_key(p, id)
  if redis.call('EXISTS', jobKey) == 1 then return 0 end
  redis.call('HSET', jobKey, 'fn', target, 'input', input, 'status', 'queued',
    'max_attempts', s[4], 'timeout_ms', s[5], 'enqueued_at', now, 'schedule', s[6])
  redis.call('ZADD', jobs_index_key(p), now, id)
  timeline_to(p, id, id, jobMaxlen, now, 'enqueued', '', 'status', 'queued',
              'schedule', s[6])
  make_ready(p, jobKey, id, notify_channel(p))
  return 1
end
