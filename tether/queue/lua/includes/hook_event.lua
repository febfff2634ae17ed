-- Webhooks (tether/queue/webhooks.py): a run event that some webhook of the namespace
-- subscribed to becomes one delivery per such webhook, written here, in the same script
-- that changed the run's status, so an event is recorded exactly when it happens or not
-- at all. `<p>hooks` is this partition's copy of the namespace's webhooks (id -> the
-- event names it wants, space-separated); while a namespace has none, the cost is one
-- EXISTS each time a run starts waiting or ends (not on queued or running), and nothing
-- on job claims, heartbeats or results.
--@include run_keys
--@include hook_keys
local HOOK_EVENT_OF = {completed = 'run.completed', failed = 'run.failed',
  cancelled = 'run.cancelled'}
local HOOK_LOG_KEEP = 200  -- deliveries listed per webhook and partition (the newest)

local function hook_event(p, runId, status, now)
  if status ~= 'waiting' and not HOOK_EVENT_OF[status] then return end  -- queued, running
  local hooksKey = hooks_key(p)
  if redis.call('EXISTS', hooksKey) == 0 then return end
  local r = redis.call('HMGET', run_key(p, runId), 'wait_kind', 'waiting_on', 'workflow',
                       'version')
  local event = HOOK_EVENT_OF[status]
  if status == 'waiting' and r[1] == 'approval' then event = 'run.awaiting_approval' end
  if not event then return end
  local hooks = redis.call('HGETALL', hooksKey)
  local eventId = nil
  for i = 1, #hooks, 2 do
    local hookId, wants = hooks[i], ' ' .. hooks[i + 1] .. ' '
    if string.find(wants, ' ' .. event .. ' ', 1, true) then
      if not eventId then
        eventId = 'ev_' .. string.match(p, '(%d+)}:$') .. '_' ..
                  redis.call('INCR', hook_seq_key(p))
      end
      local id = eventId .. '.' .. hookId
      redis.call('HSET', hook_delivery_key(p, id), 'id', id, 'hook', hookId, 'event', event,
        'event_id', eventId, 'run', runId, 'run_status', status, 'workflow', r[3] or '',
        'version', r[4] or '', 'waiting_on', (status == 'waiting' and r[2]) or '',
        'at', now, 'state', 'pending', 'attempts', 0, 'next_at', now, 'created_at', now)
      redis.call('ZADD', hook_due_key(p), now, id)
      local logKey = hook_log_key(p, hookId)
      redis.call('ZADD', logKey, now, id)
      redis.call('ZREMRANGEBYRANK', logKey, 0, -(HOOK_LOG_KEEP + 1))
    end
  end
end

-- A stand-alone job that failed for good (`dead`: attempts used up, or `failed`: not
-- retryable) is the event `job.failed` (a run's jobs are its run's business: the run's
-- own events say how it ended). Called by retry_or_die: one EXISTS per such job.
local function hook_job_event(p, jobKey, jobId, status, now)
  local hooksKey = hooks_key(p)
  if redis.call('EXISTS', hooksKey) == 0 then return end
  local hooks = redis.call('HGETALL', hooksKey)
  local fn = nil
  local eventId = nil
  for i = 1, #hooks, 2 do
    local hookId, wants = hooks[i], ' ' .. hooks[i + 1] .. ' '
    if string.find(wants, ' job.failed ', 1, true) then
      if not eventId then
        eventId = 'ev_' .. string.match(p, '(%d+)}:$') .. '_' ..
                  redis.call('INCR', hook_seq_key(p))
        fn = redis.call('HGET', jobKey, 'fn') or ''
      end
      local id = eventId .. '.' .. hookId
      redis.call('HSET', hook_delivery_key(p, id), 'id', id, 'hook', hookId,
        'event', 'job.failed', 'event_id', eventId, 'run', '', 'job', jobId,
        'function', fn, 'run_status', status, 'at', now, 'state', 'pending',
        'attempts', 0, 'next_at', now, 'created_at', now)
      redis.call('ZADD', hook_due_key(p), now, id)
      local logKey = hook_log_key(p, hookId)
      redis.call('ZADD', logKey, now, id)
      redis.call('ZREMRANGEBYRANK', logKey, 0, -(HOOK_LOG_KEEP + 1))
    end
  end
end
