--@include keys
-- Append one event to a run's timeline (the same stream its jobs write to).
local function run_timeline(p, runId, maxlen, now, event, ...)
  redis.call('XADD', timeline_key(p, runId), 'MAXLEN', '~', maxlen, '*',
    'event', event, 'run', runId, 'at', now, ...)
end

-- Log lines the workflow emitted (ctx.log), each a JSON object, in order.
local function run_logs(p, runId, maxlen, now, first)
  for i = first, #ARGV do
    run_timeline(p, runId, maxlen, now, 'log', 'line', ARGV[i])
  end
end
