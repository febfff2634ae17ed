--@include keys
--@include run_keys
-- Timeline events that change a run's status, and the status they leave: each is also
-- published as `r:<run id> <status>` on the partition's notify channel, for the API's
-- event stream (GET /v1/events). One PUBLISH per status change, none per step or log.
local RUN_STATUS_OF = {activation_queued = 'queued', activation_started = 'running',
  waiting = 'waiting', retry_scheduled = 'waiting', completed = 'completed',
  failed = 'failed', cancelled = 'cancelled'}

-- Append one event to a run's timeline (the same stream its jobs write to).
local function run_timeline(p, runId, maxlen, now, event, ...)
  redis.call('XADD', timeline_key(p, runId), 'MAXLEN', '~', maxlen, '*',
    'event', event, 'run', runId, 'at', now, ...)
  local status = RUN_STATUS_OF[event]
  if status then redis.call('PUBLISH', notify_channel(p), 'r:' .. runId .. ' ' .. status) end
end

-- Log lines the workflow emitted (ctx.log), each a JSON object, in order.
local function run_logs(p, runId, maxlen, now, first)
  for i = first, #ARGV do
    run_timeline(p, runId, maxlen, now, 'log', 'line', ARGV[i])
  end
end
