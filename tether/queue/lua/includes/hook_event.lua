-- Webhooks (tether/queue/webhooks.py): a run event that some webhook of the namespace
-- subscribed to becomes one delivery per such webhook, written here, in the same script
-- that changed the run's status, so an event is recorded exactly when it happens or not
-- at all. `<p>hooks` is this partition's copy of the namespace's webhooks (id -> the
-- event names it wants, space-separated); while a namespace has none, the cost is one
-- EXISTS per run status change and nothing on job claims, heartbeats or results.
-- Key names mirror PartitionKeys.hooks / hook_delivery / hook_due / hook_log.
local HOOK_EVENT_OF = {completed = 'run.completed', failed = 'run.failed',
  cancelled = 'run.cancelled'}
local HOOK_LOG_KEEP = 200  -- deliveries listed per webhook and partition (the newest)

local function hook_event(p, runId, status, now)
  local hooksKey = p .. 'hooks'
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
                  redis.call('INCR', p .. 'hook_seq')
      end
      local id = eventId .. '.' .. hookId
      redis.call('HSET', p .. 'hookd:' .. id, 'id', id, 'hook', hookId, 'event', event,
        'event_id', eventId, 'run', runId, 'run_status', status, 'workflow', r[3] or '',
        'version', r[4] or '', 'waiting_on', (status == 'waiting' and r[2]) or '',
        'at', now, 'state', 'pending', 'attempts', 0, 'next_at', now, 'created_at', now)
      redis.call('ZADD', p .. 'hook_due', now, id)
      local logKey = p .. 'hook_log:' .. hookId
      redis.call('ZADD', logKey, now, id)
      redis.call('ZREMRANGEBYRANK', logKey, 0, -(HOOK_LOG_KEEP + 1))
    end
  end
end
